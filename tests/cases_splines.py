"""Contract cases for the spline flows. The bound is 1 and inputs are drawn with standard
deviation 2, so every case maps points both inside and outside ``[-bound, bound]``."""
from flow_cases import Case

from course_lib.flows import RQSAutoregressive, RQSCoupling, RQSpline

CASES = {
    "RQSpline": Case(lambda d: RQSpline(d, bins=5, bound=1.0), input_scale=2.0, batch=10),
    "RQSCoupling": Case(lambda d: RQSCoupling(d, bins=5, bound=1.0, hidden=16, parity=1),
                        input_scale=2.0, batch=10),
    "RQSAutoregressive": Case(lambda d: RQSAutoregressive(d, bins=5, bound=1.0, hidden=(16, 16)),
                              input_scale=2.0, batch=10),
}
