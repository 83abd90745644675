"""Checks of worksheet 02: Jacobians, areas and where a map stops being invertible."""
from __future__ import annotations

import torch
from torch.distributions import MultivariateNormal

from ..jacobian import jacobian
from .core import as_tensor, call, check, fresh_generator, require

WS = "02_jacobian_geometry"



def wavy_map(z: torch.Tensor) -> torch.Tensor:
    """The worksheet's map f(z1, z2) = (z1 + 0.5 sin z2, z2 exp(0.3 z1))."""
    return torch.stack([z[:, 0] + 0.5 * torch.sin(z[:, 1]), z[:, 1] * torch.exp(0.3 * z[:, 0])], 1)


def _random_matrices(g, n=6):
    A = torch.randn(n, 2, 2, generator=g, dtype=torch.float64)
    A[0] = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)  # a reflection: det -1
    return A


@check("ex02_1", WS, "a Jacobian by hand")
def ex02_1(jacobian_by_hand):
    z = torch.randn(16, 2, generator=fresh_generator(), dtype=torch.float64)
    got = as_tensor(call(jacobian_by_hand, z, label="a batch of 16 points"), "jacobian_by_hand(z)",
                    shape=(16, 2, 2))
    want = jacobian(wavy_map, z)
    if torch.allclose(got, want, atol=1e-8):
        return "correct at 16 random points"
    require(not torch.allclose(got, want.transpose(1, 2), atol=1e-8),
            "you have the transpose: J[b, i, j] is the derivative of output i with respect to input j, "
            "so row i belongs to f_i.")
    bad = (got - want).abs().amax(dim=0)
    i, j = divmod(int(bad.argmax()), 2)
    require(False, f"entry [{i}, {j}] (d f_{i + 1} / d z_{j + 1}) is wrong at some points; differentiate "
                   f"f_{i + 1} with respect to z_{j + 1}, remembering the chain rule inside sin and exp.")


@check("ex02_2", WS, "a Jacobian by autograd")
def ex02_2(jacobian_autograd):
    g = fresh_generator()
    W = torch.randn(3, 3, generator=g, dtype=torch.float64)
    maps = {"a linear map": lambda z: z @ W.T, "a nonlinear map": lambda z: torch.tanh(z @ W.T) + z ** 3 / 3}
    z = torch.randn(5, 3, generator=g, dtype=torch.float64)
    for name, f in maps.items():
        got = as_tensor(call(jacobian_autograd, f, z.clone(), label=name), f"jacobian_autograd for {name}",
                        shape=(5, 3, 3))
        want = jacobian(f, z)
        if torch.allclose(got, want, atol=1e-8):
            continue
        require(not torch.allclose(got, want.transpose(1, 2), atol=1e-8),
                f"for {name} you have the transpose: the gradient of output i fills row i, not column i.")
        require(not torch.allclose(got, want.sum(1, keepdim=True).expand_as(want), atol=1e-8),
                f"for {name} every row looks like the gradient of the sum of the outputs: take the "
                "gradient of one output coordinate at a time.")
        require(False, f"for {name} your Jacobian differs from autograd's; one backward pass per output "
                       "coordinate, each giving one row")
    return "correct for a linear and a nonlinear map"


@check("ex02_3", WS, "area of the image of a region")
def ex02_3(image_area):
    g = fresh_generator()
    for A in _random_matrices(g):
        area = 0.5 + 2 * torch.rand(1, generator=g).item()
        got = as_tensor(call(image_area, A.clone(), area, label=f"A = {A.tolist()}"), "image_area(A, area)")
        want = abs(torch.linalg.det(A).item()) * area
        require(got.numel() == 1, f"image_area should return one number, got shape {tuple(got.shape)}")
        require(got.item() >= 0, f"for A = {A.numpy().round(3).tolist()} your area is negative: this map "
                                 "flips orientation, which changes the sign of det A but not the area.")
        require(abs(got.item() - want) < 1e-8,
                f"for A = {A.numpy().round(3).tolist()} and area {area:.3f} your result is wrong; which "
                "single number tells how a linear map scales every area?")
    return "correct, reflections included"


@check("ex02_4", WS, "the density of x = A z")
def ex02_4(log_density_linear):
    g = fresh_generator()
    for A in _random_matrices(g, 4):
        x = 2 * torch.randn(10, 2, generator=g, dtype=torch.float64)
        got = as_tensor(call(log_density_linear, x, A.clone(), label=f"A = {A.tolist()}"),
                        "log_density_linear(x, A)", shape=(10,))
        want = MultivariateNormal(torch.zeros(2, dtype=torch.float64), A @ A.T).log_prob(x)
        if torch.allclose(got, want, atol=1e-8):
            continue
        logdet = torch.linalg.det(A).abs().log()
        require(not torch.allclose(got, want + 2 * logdet, atol=1e-8),
                "your log-density has the log-determinant with the wrong sign: x = A z spreads mass over "
                "|det A| times the area, so the density is divided by |det A|.")
        require(torch.isfinite(got).all(), "NaN in your result: a log of a negative determinant? ")
        require(False, "your log-density differs from the change of variables; pull x back with "
                       "z = A^-1 x, evaluate the standard normal there, then account for the volume change")
    return "correct, reflections included"


@check("ex02_5", WS, "when z + k sin z stops being invertible")
def ex02_5(is_invertible):
    g = fresh_generator()
    ks = torch.cat([torch.rand(4, generator=g) * 2 - 1, 1 + 2 * torch.rand(3, generator=g),
                    -1 - 2 * torch.rand(3, generator=g), torch.tensor([1.0, -1.0])]).tolist()
    for k in ks:
        got = call(is_invertible, k, label=f"k = {k:.3f}")
        require(isinstance(got, (bool, torch.Tensor)) and not (isinstance(got, torch.Tensor) and got.numel() != 1),
                f"is_invertible should return True or False, got {type(got).__name__}")
        want = abs(k) <= 1
        require(bool(got) == want,
                f"wrong for k = {k:.3f}" + (": look at negative k too; the derivative is 1 + k cos z, and "
                                           "cos z takes both signs" if k < 0 else
                                           ": where can 1 + k cos z become zero or negative?"))
    return "correct: invertible exactly when |k| <= 1 (at |k| = 1 the derivative touches 0 at single points)"
