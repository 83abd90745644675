"""Lecture 05: Glow."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.animation import FuncAnimation
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from ..flows import Squeeze
from ..model import NormalizingFlow
from ..multiscale import multiscale_levels, resample_level
from .common import _axes

__all__ = ["BLOCK_COLOURS", "animate_squeeze", "image_grid", "plot_change_maps",
           "plot_channel_mixing", "plot_images", "plot_level_resampling", "plot_squeeze",
           "squeeze_positions", "three_channel_pattern",
           # computed elsewhere, offered here too because lecture 05 imports them from plotting
           "multiscale_levels", "resample_level"]


# the four places of a pixel in its 2x2 block: top-left, top-right, bottom-left, bottom-right
BLOCK_COLOURS = ("tab:red", "tab:blue", "tab:green", "tab:orange")


def three_channel_pattern(size: int = 32) -> torch.Tensor:
    """A batch of one image ``(1, 3, size, size)`` with values in ``[0, 1]`` whose channels
    are easy to tell apart: a disc (red), diagonal stripes (green), a left-to-right ramp
    (blue)."""
    if not isinstance(size, int) or size < 2:
        raise ValueError(f"three_channel_pattern: expected an integer size >= 2, got {size!r}")
    u = torch.linspace(-1.0, 1.0, size, dtype=torch.float64)
    rows, cols = torch.meshgrid(u, u, indexing="ij")
    disc = ((rows + 0.2) ** 2 + (cols + 0.2) ** 2 < 0.45).to(torch.float64)
    stripes = 0.5 + 0.5 * torch.cos(2 * torch.pi * 2.5 * (rows + cols) / 2)
    ramp = (cols + 1) / 2
    return torch.stack([disc, stripes, ramp])[None].to(torch.get_default_dtype())


def image_grid(images, nrow: int = 8, pad: int = 1, fill: float = np.nan) -> np.ndarray:
    """One-channel images ``(batch, 1, H, W)`` (or ``(batch, H, W)``) tiled into one array,
    ``nrow`` images per row, separated by ``pad`` cells of ``fill`` (NaN: drawn blank)."""
    images = np.asarray(images.detach() if isinstance(images, torch.Tensor) else images,
                        dtype=float)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3:
        raise ValueError(f"image_grid: expected images of shape (batch, 1, H, W) or "
                         f"(batch, H, W), got {images.shape}")
    n, h, w = images.shape
    ncol = min(nrow, n)
    nrows = -(-n // ncol)
    grid = np.full((nrows * (h + pad) - pad, ncol * (w + pad) - pad), fill)
    for k, image in enumerate(images):
        r, c = divmod(k, ncol)
        grid[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = image
    return grid


def plot_images(images, *, ax: Axes | None = None, nrow: int = 8, title: str | None = None,
                vmin: float = 0.0, vmax: float = 1.0, cmap: str = "gray_r") -> Figure:
    """A batch of one-channel images in a grid (see :func:`image_grid`). Values are clipped
    to ``[vmin, vmax]``, the pixel range of the data, so samples and data look alike."""
    grid = image_grid(images, nrow)
    ax = _axes(ax, figsize=(0.6 * grid.shape[1] / 9 + 1, 0.6 * grid.shape[0] / 9 + 0.5))
    ax.imshow(np.clip(grid, vmin, vmax), cmap=cmap, vmin=vmin, vmax=vmax,
              interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax.figure


def plot_channel_mixing(z, x, weight, *, axes: dict | None = None,
                        limit: float = 2.5) -> Figure:
    """A 3-channel image ``z`` and its 1x1-convolved ``x = W z`` (every pixel's channels
    mixed by ``weight``), channel by channel, with the matrix ``W`` itself.

    Args:
        z, x: images ``(3, H, W)`` or a batch of one ``(1, 3, H, W)``.
        weight: the ``3 x 3`` matrix ``W``.
        axes: a dict with keys ``"z"``, ``"z1"``..``"z3"``, ``"x"``, ``"x1"``..``"x3"``,
            ``"W"`` (as ``Figure.subplot_mosaic`` returns it); a new figure by default.
        limit: the colour scale of the channels is ``[-limit, limit]``.
    """
    z, x, weight = (np.asarray(t.detach() if isinstance(t, torch.Tensor) else t, dtype=float)
                    for t in (z, x, weight))
    z, x = (t[0] if t.ndim == 4 else t for t in (z, x))
    if z.shape[0] != 3 or x.shape != z.shape or weight.shape != (3, 3):
        raise ValueError(f"plot_channel_mixing: expected z and x of shape (3, H, W) and a 3x3 "
                         f"weight, got {z.shape}, {x.shape} and {weight.shape}")
    if axes is None:
        figure = plt.figure(figsize=(10.5, 4.4), layout="constrained")
        axes = figure.subplot_mosaic([["z", "z1", "z2", "z3", "W"], ["x", "x1", "x2", "x3", "W"]])
    for name, image in (("z", z), ("x", x)):
        axes[name].imshow(np.clip(image.transpose(1, 2, 0), 0, 1), interpolation="nearest")
        axes[name].set_title(f"${name}$ as RGB (clipped)", fontsize="medium")
        for c in range(3):
            ax = axes[f"{name}{c + 1}"]
            shown = ax.imshow(image[c], cmap="PuOr_r", vmin=-limit, vmax=limit,
                              interpolation="nearest")
            ax.set_title(f"channel ${name}_{c + 1}$", fontsize="medium")
    for ax in (axes[k] for k in axes if k != "W"):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    axes["x3"].figure.colorbar(shown, ax=[axes["x3"], axes["z3"]], shrink=0.8,
                               label="channel value")
    reach = max(float(np.abs(weight).max()), 1e-12)
    axes["W"].imshow(weight, cmap="RdBu_r", vmin=-reach, vmax=reach)
    for (i, j), value in np.ndenumerate(weight):
        axes["W"].text(j, i, f"{value:.2f}", ha="center", va="center", fontsize="small",
                       color="white" if abs(value) > 0.6 * reach else "black")
    axes["W"].set_xticks(range(3), [f"$z_{j + 1}$" for j in range(3)])
    axes["W"].set_yticks(range(3), [f"$x_{i + 1}$" for i in range(3)])
    axes["W"].xaxis.tick_top()
    axes["W"].grid(False)
    axes["W"].set_title("$W$, the same at every pixel", fontsize="medium")
    return axes["W"].figure


def squeeze_positions(height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each pixel of a ``height x width`` image goes under ``Squeeze`` (data to latent).

    Returns ``(start, end, channel)``, one row per pixel in row-major order: ``start`` is
    its ``(column, row)`` in the image; ``channel`` the channel ``k`` (0..3) it lands in;
    ``end`` its ``(column, row)`` in a picture that places channel ``k`` as panel
    ``(k // 2, k % 2)`` of a 2x2 arrangement to the right of the image, with a gap of 2.
    Computed with ``Squeeze`` itself, so the picture shows what the flow does.
    """
    if height % 2 or width % 2 or height < 2 or width < 2:
        raise ValueError(f"squeeze_positions: expected an even height and width, got "
                         f"{height}x{width}")
    index = torch.arange(height * width, dtype=torch.float64).reshape(1, 1, height, width)
    with torch.no_grad():
        squeezed = Squeeze(1).inverse(index)[0][0].round().long().numpy()
    start = np.zeros((height * width, 2))
    end = np.zeros((height * width, 2))
    channel = np.zeros(height * width, dtype=int)
    for pixel in range(height * width):
        row, col = divmod(pixel, width)
        start[pixel] = (col, row)
        k, i, j = (int(a[0]) for a in np.nonzero(squeezed == pixel))
        channel[pixel] = k
        left = width + 2 + (k % 2) * (width // 2 + 1)
        top = (k // 2) * (height // 2 + 1)
        end[pixel] = (left + j, top + i)
    return start, end, channel


def _squares(centres: np.ndarray, side: float = 0.86) -> list[np.ndarray]:
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * side / 2
    return [c + corners for c in centres]


def _squeeze_axes(ax: Axes, height: int, width: int) -> None:
    ax.set_xlim(-1, width + 2 + width + 1)
    ax.set_ylim(height + 1, -1.5)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.text((width - 1) / 2, -1.0, f"image (1, {height}, {width})", ha="center",
            fontsize="small")
    for k in range(4):
        left = width + 2 + (k % 2) * (width // 2 + 1)
        top = (k // 2) * (height // 2 + 1)
        ax.add_patch(plt.Rectangle((left - 0.5, top - 0.5), width // 2, height // 2, fill=False,
                                   edgecolor=BLOCK_COLOURS[k], linewidth=1.2, linestyle="--"))
        ax.text(left + width / 4 - 0.5, top - 0.7 if k < 2 else top + height / 2 - 0.1,
                f"channel {k + 1}", ha="center", va="bottom" if k < 2 else "top",
                color=BLOCK_COLOURS[k], fontsize="small")


def _pixel_collection(image: np.ndarray, centres: np.ndarray, channel: np.ndarray,
                      cmap: str = "gray_r") -> PolyCollection:
    faces = plt.get_cmap(cmap)(np.clip(image.ravel(), 0, 1))
    edges = [BLOCK_COLOURS[k] for k in channel]
    return PolyCollection(_squares(centres), facecolors=faces, edgecolors=edges, linewidths=1.5)


def _check_image(image, where: str) -> np.ndarray:
    image = np.asarray(image.detach() if isinstance(image, torch.Tensor) else image, dtype=float)
    while image.ndim > 2 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 2 or image.shape[0] % 2 or image.shape[1] % 2:
        raise ValueError(f"{where}: expected one image (H, W) with even H and W (or a batch of "
                         f"one (1, 1, H, W)), got shape {image.shape}")
    return image


def plot_squeeze(image, *, ax: Axes | None = None) -> Figure:
    """The squeeze as a picture: an image ``(1, H, W)`` (values in ``[0, 1]``) and the four
    channels ``(4, H/2, W/2)`` its 2x2 blocks become. Each pixel is outlined in the colour of
    its place in its block, which is also the colour of the channel it moves to."""
    image = _check_image(image, "plot_squeeze")
    h, w = image.shape
    start, end, channel = squeeze_positions(h, w)
    ax = _axes(ax, figsize=(8.0, 3.6))
    _squeeze_axes(ax, h, w)
    for centres in (start, end):
        ax.add_collection(_pixel_collection(image, centres, channel))
    ax.annotate("", xy=(w + 1.4, h / 2 - 0.5), xytext=(w - 0.1, h / 2 - 0.5),
                arrowprops={"arrowstyle": "->", "linewidth": 1.5})
    ax.set_title(f"squeeze: (1, {h}, {w}) -> (4, {h // 2}, {w // 2}), each 2x2 block "
                 "becomes the 4 channels of one pixel", fontsize="medium")
    return ax.figure


def animate_squeeze(image, *, frames: int = 16, figsize=(8.0, 4.0), dpi: int = 80,
                    interval: int = 120) -> FuncAnimation:
    """The pixels of an image ``(1, H, W)`` moving, in ``frames`` steps along straight lines,
    to their places in the four channels of the squeezed image (then a short pause). The
    figure is closed once the animation is built."""
    image = _check_image(image, "animate_squeeze")
    if not isinstance(frames, int) or frames < 2:
        raise ValueError(f"animate_squeeze: frames must be an integer >= 2, got {frames!r}")
    h, w = image.shape
    start, end, channel = squeeze_positions(h, w)
    figure, ax = plt.subplots(figsize=figsize, dpi=dpi, layout="constrained")
    _squeeze_axes(ax, h, w)
    pixels = ax.add_collection(_pixel_collection(image, start, channel))
    title = ax.set_title("")
    pause = frames // 4

    def draw(i: int):
        t = min(i / (frames - 1), 1.0)
        t = t * t * (3 - 2 * t)  # ease in and out
        pixels.set_verts(_squares((1 - t) * start + t * end))
        title.set_text("the image (1, H, W)" if t == 0 else
                       "after the squeeze: (4, H/2, W/2)" if t == 1 else
                       "squeezing: each 2x2 block -> 4 channels")
        return pixels, title

    animation = FuncAnimation(figure, draw, frames=frames + pause, interval=interval, blit=False)
    plt.close(figure)
    return animation


def plot_change_maps(image: torch.Tensor, flows: Sequence[torch.nn.Module],
                     titles: Sequence[str], *, axes: Sequence[Axes] | None = None) -> Figure:
    """Where one pass of each flow changes an image: ``f(z) - z`` for the same ``z``
    ``(1, C, H, W)`` (channel 0 shown), each panel divided by its largest change, since the
    pattern, not the size, is the point."""
    if len(flows) != len(titles):
        raise ValueError(f"plot_change_maps: expected one title per flow, got {len(titles)} "
                         f"titles for {len(flows)} flows")
    with torch.no_grad():
        changes = [(flow(image)[0] - image)[0, 0].cpu().numpy().astype(float) for flow in flows]
    if axes is None:
        axes = plt.subplots(1, len(flows), figsize=(3.2 * len(flows) + 0.8, 3.3),
                            layout="constrained", squeeze=False)[1][0]
    for ax, change, title in zip(axes, changes, titles):
        shown = ax.imshow(change / max(float(np.abs(change).max()), 1e-300), cmap="RdBu_r",
                          vmin=-1, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize="medium")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    axes[0].figure.colorbar(shown, ax=list(axes), shrink=0.85,
                            label="$(f(z) - z)\\,/\\,\\max|f(z) - z|$")
    return axes[0].figure


def plot_level_resampling(model: NormalizingFlow, x: torch.Tensor, levels: torch.Tensor, *,
                          variations: int = 4, temperature: float = 0.7,
                          generator: torch.Generator | None = None,
                          axes: Sequence[Axes] | None = None) -> Figure:
    """Images ``x`` (left) and, for each level of a multi-scale flow, ``variations`` images
    in which only that level's latent variables were drawn again (:func:`resample_level`):
    one row per image of ``x``."""
    n_levels = int(levels.max()) + 1
    if axes is None:
        columns = 1 + n_levels * variations
        axes = plt.subplots(1, n_levels + 1, figsize=(0.9 * columns + 0.8 * n_levels + 0.4,
                                                      0.9 * len(x) + 0.6),
                            layout="constrained", width_ratios=[1] + [variations] * n_levels)[1]
    plot_images(x, ax=axes[0], nrow=1, title="$x$")
    for k in range(n_levels):
        images = torch.stack([resample_level(model, x, levels, k, temperature, generator)
                              for _ in range(variations)], dim=1)
        count = int((levels == k).sum())
        plot_images(images.flatten(0, 1), ax=axes[k + 1], nrow=variations,
                    title=f"level {k} drawn again ({count} latents)")
    return axes[0].figure
