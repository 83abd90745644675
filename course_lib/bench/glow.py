"""Glow on the 8x8 digits: bits per dimension after a fixed time budget on one thread.

The digits are split once (seeded) into 1437 training and 360 held-out images. The model
(``models.glow()``) trains on freshly dequantized minibatches with ``bits_per_dim`` as the
loss; both sets are then scored with one fixed draw of the dequantization noise. A model
that spreads its mass uniformly over the 17 grey levels scores ``log2 17 = 4.09``.
"""
from __future__ import annotations

import math
import time

import torch

from .. import datasets, models
from ..flows import initialize
from ..training import fit
from . import table

BUDGET_S, QUICK_BUDGET_S, BATCH, LR, TEST_IMAGES = 60.0, 4.0, 128, 1e-3, 360


def split_digits(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train, test)`` integer images ``(n, 1, 8, 8)``: a seeded split of the 1797 digits."""
    images = datasets.get("digits").images
    order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(seed))
    return images[order[TEST_IMAGES:]], images[order[:TEST_IMAGES]]


def score(model, images: torch.Tensor, seed: int) -> float:
    """Bits per dimension of ``images``, one fixed dequantization draw, in chunks."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        parts = [models.bits_per_dim(model, chunk, generator=generator) * len(chunk)
                 for chunk in images.split(512)]
    return (sum(parts) / len(images)).item()


def run(quick: bool = False) -> str:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    train, test = split_digits()
    model = initialize(models.glow(), models.dequantize(train[:BATCH]))  # every ActNorm, once
    budget = QUICK_BUDGET_S if quick else BUDGET_S
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss = lambda m, batch: models.bits_per_dim(m, batch)  # noqa: E731
    # fit has no clock, so train in short rounds and stop before a round would pass the budget
    steps, rounds, start = 0, 10, time.perf_counter()
    while True:
        fit(model, train, steps=rounds, batch_size=BATCH, optimizer=optimizer, loss_fn=loss,
            seed=steps, progress=False, clip_grad=50.0)
        steps += rounds
        elapsed = time.perf_counter() - start
        if elapsed * (steps + rounds) / steps > budget:
            break
    n_params = sum(p.numel() for p in model.parameters())
    rows = [["glow (2 levels x 4 steps)", n_params, steps, 1000 * elapsed / steps,
             score(model, train, 1), score(model, test, 2)],
            ["uniform over 17 levels", 0, 0, 0.0, math.log2(17), math.log2(17)]]
    return table(["model", "params", "steps", "ms/step", "train bits/dim", "test bits/dim"], rows)
