"""Contract cases for the linear flows: permutations and the LU-parametrised matrix."""
from flow_cases import Case

from course_lib.flows import LULinear, Permutation, Reverse

CASES = {
    "Permutation": Case(lambda d: Permutation(d, seed=3)),
    "Reverse": Case(lambda d: Reverse(d)),
    "LULinear": Case(lambda d: LULinear(d)),
}
