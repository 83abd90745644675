"""Typical mistakes in worksheet 07, each with the hint its check must give."""
import torch



def reference_bin(x, xk, xk1, yk, yk1, dk, dk1):
    """The rational-quadratic bin (Durkan et al. 2019, eq. 4) and its slope, written out here."""
    w, h = xk1 - xk, yk1 - yk
    s, xi = h / w, (x - xk) / w
    denom = s + (dk1 + dk - 2 * s) * xi * (1 - xi)
    y = yk + h * (s * xi ** 2 + dk * xi * (1 - xi)) / denom
    dy = s ** 2 * (dk1 * xi ** 2 + 2 * s * xi * (1 - xi) + dk * (1 - xi) ** 2) / denom ** 2
    return y, dy


def _series(signed, divide):
    def answer(J, n):
        P, total = torch.eye(J.shape[-1], dtype=J.dtype).expand_as(J), 0
        for k in range(1, n + 1):
            P = P @ J
            term = P.diagonal(dim1=1, dim2=2).sum(-1) / (k if divide else 1)
            total = total + ((-1) ** (k + 1) if signed else 1) * term
        return total
    return answer


def _plus_iteration(g, x, n):
    z = x.clone()
    for _ in range(n):
        z = x + g(z)
    return z


WRONG = {
    "ex07_1": [(lambda x, xk, xk1, yk, yk1, dk, dk1: reference_bin(x, xk, xk1, yk, yk1, dk1, dk)[0], "swapped"),
               (lambda x, xk, xk1, yk, yk1, dk, dk1: reference_bin(x * (xk1 - xk) + xk, xk, xk1, yk, yk1, dk, dk1)[0],
                "knots")],
    "ex07_2": [(lambda x, xk, xk1, yk, yk1, dk, dk1: torch.full_like(x, (yk1 - yk) / (xk1 - xk)), "knots"),
               (lambda x, *k: reference_bin(x, *k)[1] * 1.1, "slope must equal")],
    "ex07_3": [(_series(False, True), "alternate"), (_series(True, False), "differs")],
    "ex07_4": [(_plus_iteration, "x - g\\(z\\)"), (lambda g, x, n: x, "misses")],
}
