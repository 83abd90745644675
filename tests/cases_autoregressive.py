"""Contract cases for the autoregressive flows, in both orders and with one or more hidden layers."""
from flow_cases import Case

from course_lib.flows import IAF, MAF

CASES = {
    "MAF": Case(lambda d: MAF(d, hidden=(16, 16))),
    "MAF (random order)": Case(lambda d: MAF(d, hidden=(12, 12, 12), order="random", seed=1)),
    "IAF": Case(lambda d: IAF(d, hidden=(16, 16))),
    "IAF (random order)": Case(lambda d: IAF(d, hidden=12, order="random", seed=2)),
}
