"""Contract cases for elementwise flows, composition and inversion."""
from flow_cases import Case

from course_lib.flows import Affine, Compose, Exp, Inverse, Sigmoid

CASES = {
    "Affine": Case(lambda d: Affine(d, scale=0.5 - 0.4 * (d > 1))),
    "Exp": Case(lambda d: Exp(d)),
    "Sigmoid": Case(lambda d: Sigmoid(d), input_scale=2.0),
    "Compose": Case(lambda d: Compose(Affine(d), Sigmoid(d))),
    "Inverse": Case(lambda d: Inverse(Compose(Affine(d, shift=0.5), Exp(d))), to_domain=lambda z: z.exp()),
}
