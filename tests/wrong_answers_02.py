"""Typical mistakes in worksheet 02, each with the hint its check must give."""
import torch

from course_lib.checks.ws02 import wavy_map
from course_lib.jacobian import jacobian


def _auto_transposed(f, z):
    return jacobian(f, z).transpose(1, 2)


def _summed_rows(f, z):
    z = z.detach().requires_grad_(True)
    g = torch.autograd.grad(f(z).sum(), z)[0]
    return g[:, None, :].expand(-1, z.shape[1], -1)


def _hand_missing_chain_rule(z):
    J = jacobian(wavy_map, z).clone()
    J[:, 1, 0] = z[:, 1] * torch.exp(0.3 * z[:, 0])
    return J


def _log_density(sign):
    def answer(x, A):
        z = torch.linalg.solve(A, x.T).T
        base = -0.5 * (z ** 2).sum(1) - torch.log(torch.tensor(2 * torch.pi))
        return base + sign * torch.log(torch.linalg.det(A).abs())
    return answer


WRONG = {
    "ex02_1": [(lambda z: jacobian(wavy_map, z).transpose(1, 2), "transpose"),
               (_hand_missing_chain_rule, r"entry \[1, 0\]")],
    "ex02_2": [(_auto_transposed, "transpose"), (_summed_rows, "sum of the outputs")],
    "ex02_3": [(lambda A, area: torch.linalg.det(A).item() * area, "flips orientation"),
               (lambda A, area: torch.trace(A).item() * area, "single number|flips")],
    "ex02_4": [(_log_density(+1), "wrong sign"),
               (lambda x, A: -0.5 * (x ** 2).sum(1) - torch.log(torch.tensor(2 * torch.pi)), "pull x back")],
    "ex02_5": [(lambda k: k <= 1, "negative k"), (lambda k: abs(k) < 0.5, "wrong for k")],
}
