"""Neural spline flow on the 2D toys with sharp and smooth densities.

``nsf(2, 4, 64, 8, 5.0)``: four spline couplings and an elementwise spline, trained with a
cosine learning-rate schedule on the shared budget of ``density_row``.
"""
from __future__ import annotations

from ..models import nsf
from . import density_row, density_table

DATASETS = ("eight_gaussians", "checkerboard")


def run(quick: bool = False) -> str:
    steps = 50 if quick else 2000
    rows = [density_row("nsf(2, 4, 64, 8, 5.0)", lambda: nsf(2, 4, 64, 8, 5.0), name,
                        steps=steps, schedule="cosine")
            for name in DATASETS]
    return density_table(rows)
