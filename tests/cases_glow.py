"""Contract cases for the Glow flows, on images (batch, 4, 4, 4): ActNorm (also on vectors,
initialised from the case's batch first), the 1x1 convolution, squeeze, one Glow step,
a two-level multi-scale flow and the logit preprocessing."""
from flow_cases import Case

from course_lib.flows import (ActNorm, InvConv1x1, LogitTransform, MultiScale, Squeeze,
                              glow_step, initialize)


def initialise(flow, batch):
    initialize(flow, batch)  # the data-dependent initialisation of every ActNorm inside


def image(**kwargs):
    return dict(shape=lambda c: (c, 4, 4), dims=(4,), batch=3, **kwargs)


CASES = {
    "ActNorm": Case(lambda c: ActNorm(c), warmup=initialise, **image()),
    "ActNorm[vector]": Case(lambda d: ActNorm(d), warmup=initialise),
    "InvConv1x1": Case(lambda c: InvConv1x1(c), **image()),
    # the latent side has 4 channels: z (4, 4, 4) <-> x (1, 8, 8)
    "Squeeze": Case(lambda c: Squeeze(c // 4), **image()),
    "Squeeze[any channels]": Case(lambda c: Squeeze(), **image()),
    "glow_step": Case(lambda c: glow_step(c, hidden=8), warmup=initialise, perturb=0.1, **image()),
    "MultiScale": Case(lambda c: MultiScale(c, [glow_step(4 * c, hidden=8)],
                                            inner=MultiScale(2 * c, [glow_step(8 * c, hidden=8)])),
                       warmup=initialise, perturb=0.1, **image()),
    "LogitTransform": Case(lambda c: LogitTransform(c), input_scale=2.0, **image()),
}
