"""Contract cases for the planar and radial flows (their inverses are root solves)."""
from flow_cases import Case

from course_lib.flows import Planar, Radial

CASES = {
    "Planar": Case(lambda d: Planar(d), perturb=0.5),
    "Radial": Case(lambda d: Radial(d), perturb=0.5),
}
