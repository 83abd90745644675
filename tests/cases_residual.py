"""Contract case for the residual flow, with the exact log-determinant.

In eval mode, so that power iteration does not move the spectral normalisation between
the forward map and its inverse; the inverse is a fixed-point solve, hence atol 1e-6."""
from flow_cases import Case

from course_lib.flows import ResidualFlow

CASES = {
    "ResidualFlow": Case(lambda d: ResidualFlow(d, hidden=16, n_power_iterations=30).eval(),
                         atol=1e-6),
}
