"""Lecture 06: autoregressive flows."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import colors
from matplotlib.animation import FuncAnimation
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from .common import _axes

__all__ = ["DEPENDENCY_CMAP", "animate_sequential_passes", "mask_paths",
           "plot_autoregressive_timings", "plot_dependency", "plot_made_network",
           "sequential_passes"]


#: cells of a dependency matrix: no dependency; allowed by the order but not connected;
#: connected
DEPENDENCY_CMAP = colors.ListedColormap(["white", "#f7d9b5", "tab:blue"])


def mask_paths(made: torch.nn.Module) -> torch.Tensor:
    """How many paths through a MADE's masks lead from input ``x_j`` to the outputs of
    variable ``i``: an integer matrix of shape ``(d, d)``, row ``i``, column ``j``.

    Entry ``(b, a)`` of a product of 0/1 masks ``M_{L+1} ... M_1`` counts the chains of
    kept weights from unit ``a`` of the input to unit ``b`` of the output. Output ``i``
    can depend on ``x_j`` only if this count is positive; MADE's degree rule makes it
    zero unless ``x_j`` comes strictly before ``x_i`` in the order. All ``P`` outputs of
    a variable share its degree, hence its mask row; row ``i`` counts paths to the first.
    """
    paths = None
    for mask in made.masks:
        mask = mask.to(torch.float64)
        paths = mask if paths is None else mask @ paths
    d, p = made.dim, made.params_per_dim
    return paths.reshape(d, p, d)[:, 0, :].round().long()


def _variable_labels(symbol: str, indices) -> list[str]:
    return [f"${symbol}_{{{int(k) + 1}}}$" for k in indices]


def plot_dependency(matrix, *, order=None, in_order: bool = True, ax: Axes | None = None,
                    title: str | None = None, annotate: bool = False, row_symbol: str = "x",
                    col_symbol: str = "z") -> Figure:
    """Which output depends on which input: cell ``(i, j)`` is filled when ``matrix[i, j]``
    is not 0 (a Jacobian entry, or a count of :func:`mask_paths`).

    With ``order`` (the variables in generation order, counted from 0 as in
    ``MADE.order``) rows and columns are listed in that order (unless ``in_order`` is
    False), so an autoregressive map fills a lower triangle. Cells the order allows
    (column strictly before row) that are still empty are shaded light: a dependency the
    map could have but does not. Variables are labelled from 1, as in the formulas.
    ``annotate`` writes the values.
    """
    values = np.asarray(matrix.detach() if isinstance(matrix, torch.Tensor) else matrix)
    if values.ndim == 3 and values.shape[0] == 1:
        values = values[0]
    if values.ndim != 2 or values.shape[0] != values.shape[1]:
        raise ValueError(f"plot_dependency: expected a square matrix (d, d), got shape "
                         f"{values.shape}")
    d = values.shape[0]
    generation = np.arange(d) if order is None else np.asarray(order, dtype=int)
    if sorted(generation.tolist()) != list(range(d)):
        raise ValueError(f"plot_dependency: expected order to be a permutation of 0..{d - 1}, "
                         f"got {generation.tolist()}")
    index = generation if in_order else np.arange(d)
    shown = values[np.ix_(index, index)]
    cells = 2 * (shown != 0).astype(int)
    if order is not None:
        position = np.empty(d, dtype=int)
        position[generation] = np.arange(d)
        earlier = position[index][None, :] < position[index][:, None]
        cells[earlier & (cells == 0)] = 1
    ax = _axes(ax, figsize=(0.55 * d + 1.4, 0.55 * d + 1.0))
    ax.imshow(cells, cmap=DEPENDENCY_CMAP, vmin=0, vmax=2)
    if annotate:
        for (i, j), value in np.ndenumerate(shown):
            ax.text(j, i, f"{value:g}", ha="center", va="center", fontsize="small",
                    color="white" if value != 0 else "0.55")
    ax.set_xticks(range(d), _variable_labels(col_symbol, index))
    ax.set_yticks(range(d), _variable_labels(row_symbol, index))
    ax.set_xticks(np.arange(d + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(d + 1) - 0.5, minor=True)
    ax.tick_params(which="minor", length=0)
    ax.grid(False)
    ax.grid(which="minor", color="0.8", linewidth=0.8)
    ax.xaxis.tick_top()
    if title:
        ax.set_title(title, fontsize="medium")
    return ax.figure


def _made_layers(made: torch.nn.Module):
    """Degrees of every layer and the masks between them, with one output unit per variable."""
    p = made.params_per_dim
    degrees = [deg.numpy() for deg in made.degrees[:-1]] + [made.degrees[-1][::p].numpy()]
    masks = [m.numpy() for m in made.masks[:-1]] + [made.masks[-1][::p].numpy()]
    return degrees, masks


def _unit_positions(n: int) -> np.ndarray:
    return (np.arange(n) + 0.5) / n


def plot_made_network(made: torch.nn.Module, *, ax: Axes | None = None,
                      title: str | None = None) -> Figure:
    """A MADE drawn as a network: inputs at the bottom, hidden layers above, one output
    unit per variable on top (standing for its ``P`` outputs, e.g. ``(mu_i, s_i)``), and a
    line for every weight its mask keeps. Each unit shows its degree ``m``: input ``x_j``
    has the position of ``j`` in the order (from 1), a hidden unit any of ``1..d-1``.
    A weight into a hidden unit is kept when ``m_out >= m_in``, into an output when
    ``m_out > m_in``.
    """
    ax = _axes(ax, figsize=(5.2, 4.2))
    degrees, masks = _made_layers(made)
    d = made.dim
    norm = colors.Normalize(vmin=0.5, vmax=d + 0.5)
    cmap = plt.get_cmap("viridis", d)
    segments = []
    for level, mask in enumerate(masks):
        x_in, x_out = _unit_positions(mask.shape[1]), _unit_positions(mask.shape[0])
        for out, inp in zip(*np.nonzero(mask)):
            segments.append([(x_in[inp], level), (x_out[out], level + 1)])
    ax.add_collection(LineCollection(segments, colors="0.55", linewidths=0.7, alpha=0.7))
    size = 260 if max(len(deg) for deg in degrees) <= 12 else 120
    for level, deg in enumerate(degrees):
        xs = _unit_positions(len(deg))
        ax.scatter(xs, np.full(len(deg), level), s=size, c=cmap(norm(deg)), edgecolors="black",
                   linewidths=0.6, zorder=3)
        for x, m in zip(xs, deg):
            ax.text(x, level, str(int(m)), ha="center", va="center", fontsize="x-small",
                    color="white" if m <= d / 2 else "black", zorder=4)
    top = len(degrees) - 1
    for j, x in enumerate(_unit_positions(d)):
        ax.text(x, -0.32, f"$x_{{{j + 1}}}$", ha="center", va="top")
        ax.text(x, top + 0.3, f"$\\mu_{{{j + 1}}}, s_{{{j + 1}}}$", ha="center", va="bottom",
                fontsize="small")
    ax.set_yticks(range(top + 1), ["inputs"] + [f"hidden {k}" for k in range(1, top)]
                  + ["outputs"])
    ax.set_xticks([])
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.75, top + 0.75)
    ax.grid(False)
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    order = ", ".join(str(int(k) + 1) for k in made.order)
    ax.set_title(title or f"MADE, order ({order}); numbers are degrees $m$", fontsize="medium")
    return ax.figure


def plot_autoregressive_timings(rows, *, axes: Sequence[Axes] | None = None) -> Figure:
    """Time of a density evaluation (data to latent) and of sampling (latent to data)
    against the dimension ``d``, one panel for MAF and one for IAF, on log-log axes.

    Args:
        rows: rows ``[flow name, d, density ms, sampling ms, ...]`` as
            ``course_lib.bench.autoregressive.autoregressive_rows`` returns them.
    """
    if axes is None:
        axes = plt.subplots(1, 2, figsize=(9.0, 3.4), layout="constrained", sharey=True)[1]
    names = ("MAF", "IAF")
    for ax, name in zip(axes, names):
        mine = sorted((r for r in rows if r[0] == name), key=lambda r: r[1])
        if not mine:
            raise ValueError(f"plot_autoregressive_timings: no rows for {name}")
        dims = [r[1] for r in mine]
        ax.plot(dims, [r[2] for r in mine], "o-", color="tab:blue",
                label="density $\\log p(x)$")
        ax.plot(dims, [r[3] for r in mine], "s--", color="tab:orange", label="sampling")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(dims, [str(d) for d in dims])
        ax.minorticks_off()
        ax.set_xlabel("dimension $d$")
        slow = "sampling" if name == "MAF" else "density"
        ax.set_title(f"{name}: {slow} takes $d$ passes")
        ax.legend(loc="upper left", fontsize="small")
    axes[0].set_ylabel("milliseconds (batch of 512)")
    return axes[0].figure


def sequential_passes(flow: torch.nn.Module, u: torch.Tensor,
                      direction: str = "forward") -> list[torch.Tensor]:
    """The input of every MADE pass of ``flow.forward`` (or ``flow.inverse``), followed by
    the result, recorded by a forward hook on ``flow.made``.

    On the slow side (MAF's sampling, IAF's density) there are ``d`` passes: the first
    reads ``u`` itself, and after pass ``k`` the first ``k`` variables in the order are
    final, so the list holds ``d + 1`` tensors and the last is the answer. On the fast
    side there is one pass and the list holds two.
    """
    if direction not in ("forward", "inverse"):
        raise ValueError(f"expected direction 'forward' or 'inverse', got {direction!r}")
    inputs: list[torch.Tensor] = []
    handle = flow.made.register_forward_hook(
        lambda module, args, output: inputs.append(args[0].detach().clone()))
    try:
        with torch.no_grad():
            result = getattr(flow, direction)(u)[0]
    finally:
        handle.remove()
    return inputs + [result]


def animate_sequential_passes(flow: torch.nn.Module, u: torch.Tensor, *,
                              direction: str = "forward", figsize=(8.0, 4.4), dpi: int = 80,
                              interval: int = 800) -> FuncAnimation:
    """The slow side of an autoregressive flow, one MADE pass per frame, for one point
    ``u`` of shape ``(1, d)``: bars are the current values, listed in the flow's order,
    black ticks the final answer. After pass ``k`` the first ``k`` bars are final (green).

    ``direction="forward"`` is MAF's sampling (the bars become ``x``); ``"inverse"`` is
    IAF's density evaluation (they become ``z``). The figure is closed once the animation
    is built, so a notebook shows only the animation.
    """
    iterates = [t[0].numpy().astype(float) for t in sequential_passes(flow, u[:1], direction)]
    order = flow.order.numpy()
    steps = np.stack([it[order] for it in iterates])
    final, d = steps[-1], len(order)
    symbol = "x" if direction == "forward" else "z"
    figure, ax = plt.subplots(figsize=figsize, dpi=dpi, layout="constrained")
    positions = np.arange(d)
    bars = ax.bar(positions, steps[0], color="0.7", width=0.7)
    ax.scatter(positions, final, marker="_", s=600, linewidths=2.5, color="black", zorder=3,
               label=f"final ${symbol}_i$")
    reach = 1.15 * np.abs(steps).max()
    ax.set_ylim(-reach, reach)
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_xticks(positions, _variable_labels(symbol, order))
    ax.set_xlabel("variables in the flow's order")
    ax.legend(loc="upper right", fontsize="small")
    title = ax.set_title("")

    def draw(k: int):
        values = steps[k]
        done = np.isclose(values, final, rtol=1e-9, atol=1e-12)
        for bar, value, ok in zip(bars, values, done):
            bar.set_height(value)
            bar.set_color("tab:green" if ok else "tab:orange")
        if k == 0:
            title.set_text("start: the MADE's first input is the given point")
        else:
            title.set_text(f"after pass {k} of {len(steps) - 1}: {int(done.sum())} of {d} final")
        return (*bars, title)

    animation = FuncAnimation(figure, draw, frames=len(steps), interval=interval, blit=False)
    plt.close(figure)
    return animation
