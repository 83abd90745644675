"""Contract cases for the spline flows. The bound is 1 and inputs are drawn with standard
deviation 2, so every case maps points both inside and outside ``[-bound, bound]``. The
spline coupling runs with each kind of mask of the coupling scheme: halves, an alternating
bool mask, and checkerboard and channel masks on images (batch, 4, 4, 4)."""
import torch
from flow_cases import Case

from course_lib.flows import RQSAutoregressive, RQSCoupling, RQSpline


def image():
    # a smaller perturbation than the vector cases: every weight of a 3x3 ConvNet moved by 0.3
    # gives splines with slopes near 1e-6, whose float32 round trip is only good to 1e-2
    return dict(shape=lambda c: (c, 4, 4), dims=(4,), batch=3, input_scale=2.0, perturb=0.1)


CASES = {
    "RQSpline": Case(lambda d: RQSpline(d, bins=5, bound=1.0), input_scale=2.0, batch=10),
    "RQSCoupling": Case(lambda d: RQSCoupling(d, bins=5, bound=1.0, hidden=16, parity=1),
                        input_scale=2.0, batch=10),
    "RQSCoupling[alternate]": Case(
        lambda d: RQSCoupling(d, bins=5, bound=1.0, hidden=16, mask=torch.arange(d) % 2 == 0),
        input_scale=2.0, batch=10),
    "RQSAutoregressive": Case(lambda d: RQSAutoregressive(d, bins=5, bound=1.0, hidden=(16, 16)),
                              input_scale=2.0, batch=10),
}
for mask in ("checkerboard", "channel"):
    for parity in (0, 1):
        CASES[f"RQSCoupling[{mask},parity={parity}]"] = Case(
            lambda c, mask=mask, parity=parity: RQSCoupling(c, bins=4, bound=1.0, hidden=8,
                                                            mask=mask, parity=parity),
            **image())
