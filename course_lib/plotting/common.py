"""Shared by every lecture's figures: axes handling, dtypes, styles."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes

__all__ = ["DENSITY_STYLE", "SAMPLE_STYLE", "density_1d", "model_dtype"]


SAMPLE_STYLE = {"color": "tab:blue", "alpha": 0.35}
DENSITY_STYLE = {"color": "black", "linewidth": 2}


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


def density_1d(model: torch.nn.Module, x) -> np.ndarray:
    """``p_X(x) = exp(log_prob(x))`` of a one-dimensional model at the points ``x`` (any shape)."""
    points = np.asarray(x, dtype=float)
    with torch.no_grad():
        batch = torch.as_tensor(points.reshape(-1, 1), dtype=model_dtype(model))
        return model.log_prob(batch).exp().numpy().astype(float).reshape(points.shape)


