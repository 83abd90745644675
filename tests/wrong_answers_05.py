"""Typical mistakes in worksheet 05, each with the hint its check must give."""
import math

import torch


WRONG = {
    "ex05_1": [(lambda x: (1 / x.std(dim=(0, 2, 3), unbiased=False), x.mean(dim=(0, 2, 3))), "1/std"),
               (lambda x: (x.std(dim=0), x.mean(dim=0)), "shape \\(C, H, W\\)"),
               (lambda x: (torch.ones(x.shape[1]), x.mean(dim=(0, 2, 3))), "unit variance")],
    "ex05_2": [(lambda W, h, w: torch.log(torch.diagonal(torch.linalg.lu(W)[2]).abs()).sum().item(), "H\\*W"),
               (lambda W, h, w: h * w * torch.log(torch.diagonal(W).abs()).sum().item(), "log\\|U_ii\\|")],
    "ex05_3": [(lambda nll, D, L: nll / (D * math.log(2)), "divided by"),
               (lambda nll, D, L: (nll + D * math.log(L)) / D, "ln 2")],
    "ex05_4": [(lambda x: x.reshape(x.shape[0], 4 * x.shape[1], x.shape[2] // 2, x.shape[3] // 2), "plain")],
}
