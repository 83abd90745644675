"""Shared by every lecture's figures: axes handling, dtypes and devices, styles, and log-densities
evaluated on a grid of the plane."""
from __future__ import annotations

import re

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.animation import Animation
from matplotlib.axes import Axes

from ..validation import CourseValueError

__all__ = ["DENSITY_STYLE", "SAMPLE_STYLE", "density_1d", "log_density_on_grid", "model_device",
           "model_dtype", "show_animation"]

# matplotlib's player links Font Awesome for its buttons from a CDN; JupyterLab has its own copy
_FONT_AWESOME_LINK = re.compile(r"<link\b[^>]*font-awesome[^>]*>\s*", re.IGNORECASE)


SAMPLE_STYLE = {"color": "tab:blue", "alpha": 0.35}
DENSITY_STYLE = {"color": "black", "linewidth": 2}


def show_animation(animation: Animation):
    """``animation`` as matplotlib's JavaScript player (``to_jshtml``), for a notebook to display,
    without the player's link to a CDN: the buttons take their icons from JupyterLab's own Font
    Awesome, so showing an animation asks nothing of the network.

    >>> import matplotlib.pyplot as plt
    >>> from matplotlib.animation import FuncAnimation
    >>> fig, ax = plt.subplots()
    >>> player = show_animation(FuncAnimation(fig, lambda i: [], frames=2))
    >>> "fa-play" in player.data, "https://" in player.data
    (True, False)
    >>> plt.close(fig)
    """
    from IPython.display import HTML

    if not isinstance(animation, Animation):
        raise CourseValueError(
            f"show_animation: expected a matplotlib Animation, got {type(animation).__name__}")
    return HTML(_FONT_AWESOME_LINK.sub("", animation.to_jshtml()))


def _axes(ax: Axes | None, figsize=None) -> Axes:
    if ax is not None:
        return ax
    return plt.subplots(figsize=figsize, layout="constrained")[1]


def model_dtype(model: torch.nn.Module) -> torch.dtype:
    """The floating dtype of a model's parameters or buffers (the default dtype if it has none)."""
    for t in (*model.parameters(), *model.buffers()):
        if t.is_floating_point():
            return t.dtype
    return torch.get_default_dtype()


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of a model's parameters or buffers (the CPU if it has none)."""
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")


def density_1d(model: torch.nn.Module, x) -> np.ndarray:
    """``p_X(x) = exp(log_prob(x))`` of a one-dimensional model at the points ``x`` (any shape)."""
    points = np.asarray(x, dtype=float)
    with torch.no_grad():
        batch = torch.as_tensor(points.reshape(-1, 1), dtype=model_dtype(model),
                                device=model_device(model))
        return model.log_prob(batch).exp().cpu().numpy().astype(float).reshape(points.shape)


def log_density_on_grid(log_density, xlim, ylim, resolution: int,
                        dtype: torch.dtype | None = None, device: torch.device | str | None = None
                        ) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """``log_density`` (points ``(n, 2)`` to values ``(n,)``) on a ``resolution x resolution``
    grid of the window, without gradients: the grid ``(gx, gy)`` as NumPy arrays and the values
    as a tensor of the grid's shape, on the device it was computed on. The points are made with
    ``dtype`` (torch's default if not given) on ``device``."""
    xs, ys = np.linspace(*xlim, resolution), np.linspace(*ylim, resolution)
    gx, gy = np.meshgrid(xs, ys)
    points = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], axis=1),
                             dtype=dtype or torch.get_default_dtype(), device=device)
    with torch.no_grad():
        return gx, gy, log_density(points).reshape(gx.shape)


