"""Contract cases for the coupling layers: vector masks of both parities and an alternating
bool mask, and image flows on (batch, 4, 4, 4) with checkerboard and channel masks."""
import torch
from flow_cases import Case

from course_lib.flows import AdditiveCoupling, AffineCoupling


def image():
    return dict(shape=lambda c: (c, 4, 4), dims=(4,), batch=3)


CASES = {}
for cls in (AdditiveCoupling, AffineCoupling):
    name = cls.__name__
    CASES[name] = Case(lambda d, cls=cls: cls(d, hidden=16))
    CASES[f"{name}[parity=1]"] = Case(lambda d, cls=cls: cls(d, parity=1, hidden=16))
    CASES[f"{name}[alternate]"] = Case(
        lambda d, cls=cls: cls(d, mask=torch.arange(d) % 2 == 1, hidden=16))
    for mask in ("checkerboard", "channel"):
        for parity in (0, 1):
            CASES[f"{name}[{mask},parity={parity}]"] = Case(
                lambda c, cls=cls, mask=mask, parity=parity: cls(c, mask=mask, parity=parity,
                                                                 hidden=8),
                **image())
