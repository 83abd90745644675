"""``python -m course_lib.bench``: speed and quality of the course's models on this machine.

Each section is a module of this package with a ``run(quick: bool) -> str`` function
returning its table as text; ``__main__`` runs them in order. Density models share
``density_row``, so every row uses the same budget: Adam, fresh samples every step,
one thread, and a held-out test set of 20000 samples.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch

from .. import datasets
from ..training import fit

STEPS, BATCH, LR, TEST_SAMPLES = 2000, 512, 1e-3, 20000


@dataclass
class DensityRow:
    model: str
    dataset: str
    steps: int
    ms_per_step: float
    test_nll: float
    entropy: float

    @property
    def gap(self) -> float:
        return self.test_nll - self.entropy


def density_row(label: str, build: Callable[[], torch.nn.Module], dataset: str,
                steps: int = STEPS, batch_size: int = BATCH, lr: float = LR, seed: int = 0,
                **fit_kwargs) -> DensityRow:
    """Train ``build()`` on ``dataset`` and measure its test NLL against the true entropy."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    data = datasets.get(dataset)
    model = build()
    start = time.perf_counter()
    fit(model, data, steps=steps, batch_size=batch_size, lr=lr, seed=seed, progress=False,
        **fit_kwargs)
    elapsed = time.perf_counter() - start
    test = data.sample(TEST_SAMPLES, generator=torch.Generator().manual_seed(10_000 + seed))
    with torch.no_grad():
        nll = torch.cat([-model.log_prob(chunk) for chunk in test.split(5000)]).mean().item()
    return DensityRow(label, dataset, steps, 1000 * elapsed / steps, nll, data.entropy)


def table(headers: list[str], rows: list[list]) -> str:
    """A plain-text table with right-aligned numbers."""
    cells = [[h for h in headers]] + [[_fmt(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def density_table(rows: list[DensityRow]) -> str:
    return table(["model", "dataset", "steps", "ms/step", "test NLL", "entropy", "gap (nats)"],
                 [[r.model, r.dataset, r.steps, r.ms_per_step, r.test_nll, r.entropy, r.gap]
                  for r in rows])


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1e4 else f"{v:.3g}"
    return str(v)
