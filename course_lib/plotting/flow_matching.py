"""Lecture 11: flow matching."""
from __future__ import annotations

import copy
import time
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import colors
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torchdiffeq import odeint as _odeint

__all__ = ["TimedLoss", "plot_field_over_time", "plot_solver_steps", "plot_training_comparison",
           "solve_field"]


class TimedLoss:
    """A training loss that keeps a clock, to compare training methods by the time they take.

    ``timed = TimedLoss(flow_matching_loss)`` goes into ``fit(model, data, loss_fn=timed)``;
    ``TimedLoss()`` wraps ``model.forward_kl`` (maximum likelihood). Each call returns
    ``loss_fn(model, batch)`` and records the loss and the CPU time since the first call
    (``timed.losses``, ``timed.seconds``). At the first call, and after every ``every``
    seconds of CPU time, it also keeps a copy of the parameters (``timed.checkpoints``, a list
    of ``(seconds, state_dict)``), so that :meth:`evaluate` can measure the model at those
    times afterwards without the measuring counting as training time.
    """

    def __init__(self, loss_fn: Callable | None = None, every: float = 1.0):
        if isinstance(every, bool) or not isinstance(every, (int, float)) or not every > 0:
            raise ValueError(f"every must be a positive number of seconds, got {every!r}")
        self.loss_fn, self.every = loss_fn, float(every)
        self.seconds: list[float] = []
        self.losses: list[float] = []
        self.checkpoints: list[tuple[float, dict]] = []
        self._start: float | None = None

    def elapsed(self) -> float:
        """CPU seconds since the first call (0 before it)."""
        return 0.0 if self._start is None else time.process_time() - self._start

    def __call__(self, model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
        if self._start is None:
            self._start, now = time.process_time(), 0.0
        else:
            now = self.elapsed()
        if not self.checkpoints or now >= self.checkpoints[-1][0] + self.every:
            self.keep(model, now)
        loss = model.forward_kl(batch) if self.loss_fn is None else self.loss_fn(model, batch)
        self.seconds.append(now)
        self.losses.append(float(loss.detach()))
        return loss

    def keep(self, model: torch.nn.Module, seconds: float | None = None) -> None:
        """Keep a copy of ``model``'s parameters, stamped ``seconds`` (default: now)."""
        stamp = self.elapsed() if seconds is None else float(seconds)
        self.checkpoints.append((stamp, copy.deepcopy(model.state_dict())))

    def evaluate(self, model: torch.nn.Module,
                 measure: Callable[[torch.nn.Module], float]) -> tuple[np.ndarray, np.ndarray]:
        """``measure(m)`` for a copy ``m`` of ``model`` loaded with each checkpoint in turn
        (``model`` itself is left alone); returns the checkpoints' times and the values."""
        probe = copy.deepcopy(model)
        values = []
        for _, state in self.checkpoints:
            probe.load_state_dict(state)
            values.append(float(measure(probe)))
        return np.array([s for s, _ in self.checkpoints]), np.array(values)


def _running_mean(values: np.ndarray, width: int) -> np.ndarray:
    width = max(1, min(width, len(values)))
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    return (cumulative[width:] - cumulative[:-width]) / width


def plot_training_comparison(runs: dict, gaps: dict, *, loss_labels: dict | None = None,
                             loss_lines: dict | None = None, smooth: int = 50,
                             quality_label: str = "test NLL $-$ entropy (nats)",
                             axes: Sequence[Axes] | None = None) -> Figure:
    """Training methods against CPU time: each run's training loss in a panel of its own (a
    light line per step, a running mean of ``smooth`` steps on top, or of a tenth of the run
    if that is shorter; different methods have losses in different units), then the quality
    of every run in one last panel.

    Args:
        runs: label -> :class:`TimedLoss` that recorded the run.
        gaps: label -> ``(seconds, gap)`` at checkpoints (from :meth:`TimedLoss.evaluate`):
            the test NLL minus the entropy, or another estimate of ``KL(data || model)``;
            0 is the best any model can do.
        loss_labels: label -> the name of that run's loss (the y label of its panel).
        loss_lines: label -> ``(value, text)``, a dashed reference line in its loss panel.
        quality_label: the y label of the quality panel.
    """
    names = list(runs)
    if axes is None:
        axes = plt.subplots(1, len(names) + 1, figsize=(4.0 * (len(names) + 1), 3.4),
                            layout="constrained")[1]
    loss_labels, loss_lines = loss_labels or {}, loss_lines or {}
    colours = {name: f"C{k}" for k, name in enumerate(names)}
    for ax, name in zip(axes, names):
        seconds, losses = np.asarray(runs[name].seconds), np.asarray(runs[name].losses)
        ax.plot(seconds, losses, color=colours[name], alpha=0.25, linewidth=0.6)
        width = max(1, min(smooth, len(losses) // 10))
        ax.plot(seconds[width - 1:], _running_mean(losses, width), color=colours[name],
                linewidth=1.8, label=f"running mean of {width} steps")
        if name in loss_lines:
            value, text = loss_lines[name]
            ax.axhline(value, color="black", linestyle="--", linewidth=1, label=text)
        low, high = np.quantile(losses, [0.0, 0.98])
        if name in loss_lines:
            low = min(low, loss_lines[name][0])
        pad = 0.05 * (high - low)
        ax.set_ylim(low - pad, high + pad)
        ax.set_xlabel("CPU seconds of training")
        ax.set_ylabel(loss_labels.get(name, "training loss"))
        ax.set_title(f"{name}: {len(losses)} steps", fontsize="medium")
        ax.legend(fontsize="small")
    quality = axes[len(names)]
    lowest = 0.0
    for name in names:
        seconds, values = gaps[name]
        quality.plot(seconds, values, "o-", color=colours[name], label=name, markersize=4)
        lowest = min(lowest, float(np.min(values)))
    quality.axhline(0.0, color="black", linestyle="--", linewidth=1, label="0: a perfect model")
    quality.set_yscale("symlog", linthresh=0.1)
    quality.set_ylim(bottom=1.2 * lowest)
    quality.set_xlabel("CPU seconds of training")
    quality.set_ylabel(quality_label)
    quality.set_title("quality at the checkpoints", fontsize="medium")
    quality.legend(fontsize="small")
    return axes[0].figure


def solve_field(field: Callable, z0: torch.Tensor, n_steps: int | None = None, *,
                rtol: float = 1e-5, atol: float = 1e-5) -> tuple[torch.Tensor, int]:
    """``x = z(1)`` for ``dz/dt = field(t, z)``, ``z(0) = z0``, without gradients: Euler's
    method with ``n_steps`` equal steps, or dopri5 with the given tolerances when ``n_steps``
    is ``None``. Returns ``x`` and the number of times ``field`` was evaluated."""
    if n_steps is not None and (isinstance(n_steps, bool) or not isinstance(n_steps, int)
                                or n_steps < 1):
        raise ValueError(f"n_steps must be a positive integer or None, got {n_steps!r}")
    calls = 0

    def counted(t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += 1
        return field(t, z)

    with torch.no_grad():
        if n_steps is None:
            span = torch.tensor([0.0, 1.0], dtype=z0.dtype)
            x = _odeint(counted, z0, span, rtol=rtol, atol=atol, method="dopri5")[-1]
        else:  # the grid itself is the list of Euler steps
            grid = torch.linspace(0.0, 1.0, n_steps + 1, dtype=z0.dtype)
            x = _odeint(counted, z0, grid, method="euler")[-1]
    return x, calls


def plot_solver_steps(fields: dict, z0: torch.Tensor, steps: Sequence[int] = (1, 2, 4, 8), *,
                      background=None, xlim: tuple[float, float] = (-4.5, 4.5),
                      ylim: tuple[float, float] = (-4.5, 4.5),
                      axes=None) -> Figure:
    """Where the same base points ``z0`` land with a few Euler steps, against an accurate
    dopri5 solve (last column), one row per field (title -> ``f(t, z)``).

    Each Euler panel gives the mean distance of its points to dopri5's; the dopri5 panel the
    number of evaluations of ``f`` it took (``rtol = atol = 1e-5``).
    """
    if axes is None:
        axes = plt.subplots(len(fields), len(steps) + 1, figsize=(2.0 * (len(steps) + 1),
                                                                 2.15 * len(fields) + 0.2),
                            layout="constrained", squeeze=False)[1]
    axes = np.asarray(axes).reshape(len(fields), len(steps) + 1)
    angle = np.arctan2(z0[:, 1].numpy(), z0[:, 0].numpy())
    for row, (name, field) in zip(axes, fields.items()):
        reference, calls = solve_field(field, z0)
        panels = [(f"{k} Euler step{'s' if k > 1 else ''}", *solve_field(field, z0, k))
                  for k in steps]
        for ax, (label, x, _) in zip(row, panels):
            error = (x - reference).norm(dim=1).mean().item()
            ax.set_title(f"{label}\nmean distance {error:.2f}", fontsize="small")
        row[-1].set_title(f"dopri5\n{calls} evaluations of f", fontsize="small")
        for ax, x in zip(row, [x for _, x, _ in panels] + [reference]):
            if background is not None:
                bg = np.asarray(background, dtype=float)
                ax.scatter(bg[:, 0], bg[:, 1], s=2, color="0.8", linewidths=0)
            x = x.numpy()
            ax.scatter(x[:, 0], x[:, 1], c=angle, cmap="hsv", s=3, linewidths=0, alpha=0.85)
            ax.set_xlim(*xlim)
            ax.set_ylim(*ylim)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(name)
    return axes[0][0].figure


def plot_field_over_time(field: Callable, log_density: Callable, times: Sequence[float], *,
                         xlim: tuple[float, float] = (-4.5, 4.5),
                         ylim: tuple[float, float] = (-4.5, 4.5), resolution: int = 90,
                         floor: float = -8.0, axes: Sequence[Axes] | None = None) -> Figure:
    """A time-dependent field and the density it carries, one panel per time: the log-density
    ``log p_t = log_density(t, x)`` as a colour map on one scale for all panels (from
    ``floor`` to the highest value, with one colour bar) under the streamlines of
    ``field(t, x)``. Both take points of shape ``(n, 2)`` in float64."""
    if axes is None:
        axes = plt.subplots(1, len(times), figsize=(2.5 * len(times) + 0.8, 2.8),
                            layout="constrained", squeeze=False)[1][0]
    xs, ys = np.linspace(*xlim, resolution), np.linspace(*ylim, resolution)
    gx, gy = np.meshgrid(xs, ys)
    points = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], axis=1), dtype=torch.float64)
    with torch.no_grad():
        log_ps = [log_density(float(t), points).reshape(gx.shape).numpy() for t in times]
    norm = colors.Normalize(floor, max(float(lp.max()) for lp in log_ps))
    for ax, t, log_p in zip(axes, times, log_ps):
        with torch.no_grad():
            v = field(torch.tensor(float(t), dtype=torch.float64), points).numpy()
        mesh = ax.pcolormesh(gx, gy, np.maximum(log_p, floor), cmap="viridis", norm=norm,
                             shading="auto")
        ax.streamplot(xs, ys, v[:, 0].reshape(gx.shape), v[:, 1].reshape(gx.shape),
                      color="white", linewidth=0.6, density=0.5, arrowsize=0.7)
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_aspect("equal")
        ax.set_xlabel("$x_1$")
        ax.set_title(f"t = {t:g}", fontsize="medium")
        ax.grid(False)
    axes[0].set_ylabel("$x_2$")
    axes[0].figure.colorbar(mesh, ax=list(axes), label=r"$\log p_t$", shrink=0.85)
    return axes[0].figure
