"""course_lib's neural spline flow next to zuko's, trained side by side in one process.

Both models get the same budget as every density row (``STEPS`` steps of ``BATCH`` fresh
samples, Adam with learning rate ``LR`` and no schedule, one thread) and the very same
batches: at every step each model takes one optimiser step on the batch, the order of the
two alternates from step to step, and each step is timed on its own, so that whatever
else the machine does slows both alike and the ratio of step times is fair. The gap is
the test NLL on ``TEST_SAMPLES`` fresh samples minus the target's entropy (the forward KL
divergence, in nats). Models: ``nsf(2, 4, 64, 8, 5.0)`` and
``zuko.flows.NSF(2, transforms=4, hidden_features=[64, 64], bins=8)``, whose splines
also act on ``[-5, 5]`` (zuko's fixed bound).

zuko is not a dependency of the course: ``pip install -e .[bench]`` installs the version
this comparison was written against.
"""
from __future__ import annotations

import time

import torch

from .. import datasets
from ..models import nsf
from ..training import adam
from . import BATCH, LR, STEPS, TEST_SAMPLES, table

DATASETS = ("eight_gaussians", "checkerboard")
SEEDS = (0, 1, 2)
COURSE, PEER = "course_lib nsf", "zuko NSF"
INSTALL_HINT = ("zuko is not installed, so there is no peer to compare with; "
                "`pip install -e .[bench]` (an optional extra that pins zuko) adds it.")


def _zuko():
    try:
        import zuko
    except ImportError:
        return None
    return zuko


def _course_model() -> torch.nn.Module:
    return nsf(2, 4, 64, 8, 5.0)


def _zuko_model(zuko) -> torch.nn.Module:
    return zuko.flows.NSF(2, transforms=4, hidden_features=[64, 64], bins=8)


def side_by_side(dataset: str, seed: int, steps: int = STEPS, batch_size: int = BATCH,
                 lr: float = LR) -> dict[str, tuple[float, float]]:
    """Train both models on the same batches, interleaved; ``{name: (gap, ms per step)}``."""
    zuko = _zuko()
    if zuko is None:
        raise ImportError(INSTALL_HINT)
    torch.set_num_threads(1)
    data = datasets.get(dataset)
    torch.manual_seed(seed)
    course = _course_model()
    torch.manual_seed(seed)
    peer = _zuko_model(zuko)
    losses = {COURSE: lambda x: -course.log_prob(x).mean(),
              PEER: lambda x: -peer().log_prob(x).mean()}  # zuko: flow() is the distribution
    # the same Adam as ``fit`` (fused where torch has the kernel) for both
    optimisers = {COURSE: adam(course, lr), PEER: adam(peer, lr)}
    seconds = dict.fromkeys(losses, 0.0)
    names = list(losses)
    generator = torch.Generator().manual_seed(seed)
    course.train(), peer.train()
    for step in range(steps):
        x = data.sample(batch_size, generator=generator).float()
        for name in (names if step % 2 == 0 else names[::-1]):
            start = time.perf_counter()
            optimisers[name].zero_grad(set_to_none=True)
            losses[name](x).backward()
            optimisers[name].step()
            seconds[name] += time.perf_counter() - start
    course.eval(), peer.eval()
    test = data.sample(TEST_SAMPLES, generator=torch.Generator().manual_seed(10_000 + seed))
    log_probs = {COURSE: course.log_prob, PEER: lambda x: peer().log_prob(x)}
    result = {}
    with torch.no_grad():
        for name in names:
            nll = -torch.cat([log_probs[name](chunk) for chunk in test.float().split(5000)]).mean()
            result[name] = (nll.item() - data.entropy, 1000 * seconds[name] / steps)
    return result


def run(quick: bool = False) -> str:
    if _zuko() is None:
        return INSTALL_HINT
    steps, seeds = (50, SEEDS[:1]) if quick else (STEPS, SEEDS)
    rows, lines = [], []
    for dataset in DATASETS:
        runs = [side_by_side(dataset, seed, steps) for seed in seeds]
        for seed, r in zip(seeds, runs):
            rows.append([dataset, str(seed), r[COURSE][0], r[PEER][0], r[COURSE][1], r[PEER][1],
                         r[COURSE][1] / r[PEER][1]])
        mean = {name: [sum(r[name][i] for r in runs) / len(runs) for i in (0, 1)]
                for name in (COURSE, PEER)}
        rows.append([dataset, "mean", mean[COURSE][0], mean[PEER][0], mean[COURSE][1],
                     mean[PEER][1], mean[COURSE][1] / mean[PEER][1]])
        lines.append(f"{dataset}: mean gap {mean[COURSE][0]:.3f} (course_lib) vs "
                     f"{mean[PEER][0]:.3f} (zuko); step-time ratio "
                     f"{mean[COURSE][1] / mean[PEER][1]:.2f}")
    text = table(["dataset", "seed", f"gap {COURSE}", f"gap {PEER}", "ms/step course_lib",
                  "ms/step zuko", "ratio"], rows)
    header = (f"{steps} steps of {BATCH} samples, Adam {LR:g}, no schedule, one thread; "
              f"both models on the same batches, steps interleaved; "
              f"zuko {getattr(_zuko(), '__version__', '?')}")
    return "\n".join([header, text, *lines])
