"""Typical mistakes in worksheet 04, each with the hint its check must give."""
import torch

from course_lib.flows import Affine
from course_lib.model import NormalizingFlow


def _sees_z_b(z, mask, s_net, t_net):
    s, t = s_net(z), t_net(z)
    return torch.where(mask, z * torch.exp(s) + t, z), (s * mask).sum(1)


def _all_s(z, mask, s_net, t_net):
    a = z * ~mask
    s, t = s_net(a), t_net(a)
    return torch.where(mask, z * torch.exp(s) + t, z), s.sum(1)


def _inverse_times(x, mask, s_net, t_net):
    a = x * ~mask
    s, t = s_net(a), t_net(a)
    return torch.where(mask, (x - t) * torch.exp(s), x), -(s * mask).sum(1)


def _inverse_sign(x, mask, s_net, t_net):
    a = x * ~mask
    s, t = s_net(a), t_net(a)
    return torch.where(mask, (x - t) * torch.exp(-s), x), (s * mask).sum(1)


def _inverse_unmasked(x, mask, s_net, t_net):
    s, t = s_net(x), t_net(x)
    return torch.where(mask, (x - t) * torch.exp(-s), x), -(s * mask).sum(1)


def _same_mask(dim, n):
    m = torch.arange(dim) % 2 == 1
    return [m for _ in range(n)]


WRONG = {
    "ex04_1": [(_sees_z_b, "saw z_b"), (_all_s, "every coordinate")],
    "ex04_2": [(_inverse_times, "divides"), (_inverse_sign, "forward sign"),
               (_inverse_unmasked, "saw all of x")],
    "ex04_3": [(_same_mask, "not complementary"),
               (lambda dim, n: [torch.ones(dim, dtype=torch.bool)] * n, "keep some and transform some")],
    "ex04_4": [(lambda: NormalizingFlow(2, [Affine(2)]), "above 2.1"), (lambda: None, "NormalizingFlow")],
}
