"""RealNVP on 2D densities with a known entropy: how close maximum likelihood gets.

``realnvp(2, 8, 64)`` (8 affine couplings, conditioners with two hidden layers of 64) is
trained on ``eight_gaussians`` and ``checkerboard`` with the budget every density row of
the benchmark shares (``course_lib.bench``): 2000 steps of Adam at learning rate 1e-3,
batches of 512 fresh samples, one thread; here with a cosine decay of the learning rate,
so the last steps average out minibatch noise. The test NLL is measured on 20000 held-out
samples, and the gap (test NLL minus the true entropy, in nats) is what the model still
gets wrong: 0 is a perfect fit. ``quick=True`` trains for 50 steps, to check that it runs.
"""
from __future__ import annotations

from . import density_row, density_table, STEPS
from ..models import realnvp

DATASETS = ("eight_gaussians", "checkerboard")


def run(quick: bool = False) -> str:
    steps = 50 if quick else STEPS
    rows = [density_row("realnvp(2, 8, 64)", lambda: realnvp(2, 8, 64), name, steps=steps,
                        schedule="cosine")
            for name in DATASETS]
    return density_table(rows)
