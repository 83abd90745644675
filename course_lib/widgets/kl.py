"""Lecture 08: forward against reverse KL."""
from __future__ import annotations

from typing import Sequence

import ipywidgets as widgets
import torch
from matplotlib.figure import Figure
from torch import nn

from ..plotting import log_mass_on_window
from ..plotting import plot_target_and_fits
from ..sampling import effective_sample_size, log_importance_weights, log_normaliser_estimate
from .common import FigureExplorer

__all__ = ["OBJECTIVE_LABELS", "kl_explorer"]


OBJECTIVE_LABELS = {"forward_kl": "forward KL", "reverse_kl": "reverse KL"}


def _sampler_summary(model: nn.Module, target, log_z: float, exact: bool, n: int,
                     seed: int) -> str:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        _, log_w = log_importance_weights(model, target.log_prob, n)
    log_w = log_w.to(torch.float64)
    ess = effective_sample_size(log_w).item() / n
    # rounded first so that a tiny negative estimate shows as 0.00, not -0.00
    estimate = round(log_normaliser_estimate(log_w).item(), 2) + 0.0
    reference = "exact" if exact else "grid"
    return f"ESS/n = {ess:.2f}, $\\log\\hat Z$ = {estimate:.2f} ({reference} {log_z:.2f})"


def kl_explorer(targets: Sequence, fits: dict, *, samples: int = 400, n_weights: int = 4000,
                resolution: int = 100, seed: int = 0) -> FigureExplorer:
    """Switch between targets and between models already fitted to them by the forward KL
    and the reverse KL: nothing is trained when a control moves.

    Args:
        targets: the targets (``course_lib.targets``), listed by their ``name``.
        fits: ``(target.name, "forward_kl" or "reverse_kl")`` -> trained model.

    The figure shows the target (with exact samples where it can be sampled) and each chosen
    fit with ``samples`` of its samples, on one colour scale. Each fit's title gives its
    ``ESS / n`` and its importance-sampling estimate of ``log Z`` from ``n_weights`` samples,
    against the exact value (or a grid sum on the window where there is no closed form).
    """
    by_name = {target.name: target for target in targets}
    missing = [(name, objective) for name in by_name for objective in OBJECTIVE_LABELS
               if (name, objective) not in fits]
    if missing:
        raise ValueError(f"kl_explorer: expected a fitted model for every target and objective, "
                         f"missing {missing}")
    controls = {
        "target": widgets.Dropdown(options=list(by_name), description="target"),
        "objective": widgets.ToggleButtons(options=[("forward KL", "forward_kl"),
                                                    ("reverse KL", "reverse_kl"),
                                                    ("both", "both")],
                                           value="both", description="objective"),
    }

    def draw(figure: Figure, target: str, objective: str) -> None:
        chosen = list(OBJECTIVE_LABELS) if objective == "both" else [objective]
        t = by_name[target]
        exact = t.log_normaliser is not None
        log_z = t.log_normaliser if exact else log_mass_on_window(t.log_prob, t.xlim, t.ylim,
                                                                  400, torch.float64)
        shown = {}
        for name in chosen:
            model = fits[target, name]
            summary = _sampler_summary(model, t, log_z, exact, n_weights, seed)
            shown[f"{OBJECTIVE_LABELS[name]} fit $q$\n{summary}"] = model
        try:
            points = t.sample(samples, generator=torch.Generator().manual_seed(seed))
        except NotImplementedError:
            points = None
        axes = figure.subplots(1, 1 + len(chosen))
        plot_target_and_fits(t.log_prob, shown, t.xlim, t.ylim, target_samples=points,
                             model_samples=samples, resolution=resolution, axes=axes,
                             target_title=f"target: {target}", seed=seed)

    return FigureExplorer(controls, draw, figsize=(11.0, 3.9))
