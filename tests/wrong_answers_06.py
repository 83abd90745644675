"""Typical mistakes in worksheet 06, each with the hint its check must give."""
import torch


def _masks(strict_hidden, strict_out):
    def answer(degrees):
        out = []
        for k in range(len(degrees) - 1):
            last = k == len(degrees) - 2
            strict = strict_out if last else strict_hidden
            d_in, d_out = degrees[k], degrees[k + 1]
            out.append((d_out[:, None] > d_in[None, :] if strict else d_out[:, None] >= d_in[None, :]).double())
        return out
    return answer


def _forward_one_pass(z, cond):
    mu, s = cond(z)
    return z * torch.exp(s) + mu, s.sum(1)


WRONG = {
    "ex06_1": [(_masks(True, True), "strict inequality: hidden"), (_masks(False, False), "output layer use a strict")],
    "ex06_2": [(lambda x, c: ((x - c(x)[0]) * torch.exp(c(x)[1]), -c(x)[1].sum(1)), "times|one pass"),
               (lambda x, c: (lambda m, s: ((x - m) * torch.exp(s), -s.sum(1)))(*c(x)), "multiplied by exp"),
               (lambda x, c: (lambda m, s: ((x - m) * torch.exp(-s), s.sum(1)))(*c(x)), "forward sign")],
    "ex06_3": [(_forward_one_pass, "one pass per dimension")],
    "ex06_4": [(lambda flow, op, d: 1 if (flow, op) in (("MAF", "sampling"), ("IAF", "density")) else d, "wrong for"),
               (lambda flow, op, d: 1, "wrong for")],
}
