"""Contract cases for the continuous normalizing flow, with the exact trace.

A small random ``VectorField`` in float64, solved by dopri5 with ``rtol = atol = 1e-10``. The
solver keeps the local error of each step below about ``1e-10 (1 + |y|)``; over the tens of
steps of a solve on [0, 1] these add up to a global error of the point and of the integrated
trace of order 1e-9 (measured: at most 2e-9 for the round trip and 1e-9 between the log-det
and the autograd Jacobian of the solve, dimensions 2 and 5). Hence the contract's tolerance
1e-7, instead of the 1e-9 of the closed-form flows: a hundred times the tolerance asked of
the solver, far below anything a wrong sign or a missing term of the log-det would give.
"""
from flow_cases import Case

from course_lib.continuous import CNF, VectorField

SOLVER = dict(method="dopri5", rtol=1e-10, atol=1e-10)

CASES = {
    "CNF": Case(lambda d: CNF(VectorField(d, hidden=8, layers=2), trace="exact", **SOLVER),
                atol=1e-7, solver=True),
}
