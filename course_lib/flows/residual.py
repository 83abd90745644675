"""Residual flows (Behrmann et al., 2019; Chen et al., 2019): ``x = z + g(z)`` with ``Lip(g) < 1``.

A residual block is invertible when its branch ``g`` is a contraction: then
``z = x - g(z)`` has exactly one solution, found by the fixed-point iteration
``z <- x - g(z)`` (Banach), and ``I + J_g`` has no zero eigenvalue. ``g`` is an MLP whose
linear layers are divided by their spectral norm (estimated by power iteration) and
scaled by ``c < 1``, with 1-Lipschitz activations, so ``Lip(g) <= c``.

The log-determinant ``log|det(I + J_g)|`` is either exact (the full Jacobian by autograd,
``d`` backward passes, for small ``d``) or the power series

``log det(I + J_g) = sum_{k>=1} (-1)^(k+1) / k * tr(J_g^k)``,

which converges because every eigenvalue of ``J_g`` has modulus at most ``c``; each trace
is estimated with Hutchinson's ``tr(A) ~ eps^T A eps`` using vector-Jacobian products only.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..jacobian import probes
from ..validation import CourseValueError, nonnegative_int, positive_float, positive_int
from .base import Flow, FlowInputError

__all__ = ["ResidualFlow", "SpectralLinear", "lipswish", "log_abs_det_exact", "log_abs_det_series"]


def lipswish(x: Tensor) -> Tensor:
    """``x sigmoid(x) / 1.1``: smooth, and 1-Lipschitz because the slope of swish stays below 1.1."""
    return x * torch.sigmoid(x) / 1.1


class SpectralLinear(nn.Linear):
    """A linear layer with weight ``W / max(1, sigma(W) / c)``, so its spectral norm is at most ``c``.

    ``sigma(W)`` is estimated by power iteration, ``v <- W^T u / |W^T u|``,
    ``u <- W v / |W v|``, ``sigma ~ u^T W v``, from vectors kept between calls. Only in
    training mode are the improved vectors stored back; in eval mode the same weights
    always give the same map, which the fixed-point inverse relies on. As in torch's
    ``spectral_norm``, the normalised weight is built from copies of ``u`` and ``v``, so a
    later call that updates them in place cannot invalidate a graph built earlier. The estimate
    approaches ``sigma`` from below, so the bound ``c`` holds once the iteration has
    converged (at construction, and after some training steps when the weights change).
    """

    def __init__(self, in_features: int, out_features: int, lipschitz: float,
                 n_power_iterations: int):
        super().__init__(in_features, out_features)
        self.lipschitz, self.n_power_iterations = lipschitz, n_power_iterations
        generator = torch.Generator().manual_seed(in_features * 7919 + out_features)
        self.register_buffer("u", F.normalize(torch.randn(out_features, generator=generator), dim=0))
        self.register_buffer("v", F.normalize(torch.randn(in_features, generator=generator), dim=0))
        self.normalised_weight(n_iterations=100, store=True)

    def normalised_weight(self, n_iterations: int | None = None, store: bool | None = None) -> Tensor:
        n = self.n_power_iterations if n_iterations is None else n_iterations
        with torch.no_grad():
            u, v = self.u, self.v
            for _ in range(n):
                v = F.normalize(self.weight.t() @ u, dim=0)
                u = F.normalize(self.weight @ v, dim=0)
            if n > 0 and (store or (store is None and self.training)):
                self.u.copy_(u)
                self.v.copy_(v)
            u, v = u.clone(), v.clone()
        sigma = u @ self.weight @ v
        return self.weight / torch.clamp(sigma / self.lipschitz, min=1.0)


def _graph_input(z: Tensor) -> Tensor:
    return z if z.requires_grad else z.detach().requires_grad_(True)


def log_abs_det_exact(g: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
    """``log|det(I + J_g(z))|`` per sample from the full Jacobian (``d`` vector-Jacobian products).

    The Jacobian of each sample is built with ``torch.func.jacrev``, vectorised over the
    batch with ``vmap`` (``g`` acts on each row on its own), so the whole computation is a
    function transform: it runs inside ``torch.func`` transforms of the flow, and ordinary
    autograd differentiates it, with respect to ``z`` and the weights, for training.
    """
    if z.shape[0] == 0:
        return z.new_zeros(0)
    jac = torch.func.vmap(torch.func.jacrev(lambda v: g(v[None])[0]))(z)
    eye = torch.eye(z.shape[1], dtype=z.dtype, device=z.device)
    return torch.linalg.slogdet(eye + jac)[1]


def log_abs_det_series(g: Callable[[Tensor], Tensor], z: Tensor, n_terms: int = 10,
                       n_probes: int = 1, eps: Tensor | None = None,
                       generator: torch.Generator | None = None) -> Tensor:
    """``sum_{k=1}^{n} (-1)^(k+1)/k * eps^T J_g^k eps``, averaged over probes ``eps``.

    ``eps^T J^k`` is built by ``k`` vector-Jacobian products, so each term costs one
    backward pass. Truncating after ``n`` terms leaves an error of order ``c^(n+1) / (n+1)``
    per dimension; the probes add variance but no bias. Pass ``eps`` of shape
    ``(n_probes, batch, d)`` to fix the probes (Rademacher by default).
    """
    n_terms = positive_int(n_terms, "n_terms", "log_abs_det_series")
    if eps is None:
        n_probes = positive_int(n_probes, "n_probes", "log_abs_det_series")
        eps = probes(z.shape, "rademacher", n_probes, z.dtype, generator).to(z.device)
    elif eps.dim() != 3 or eps.shape[1:] != z.shape:
        raise FlowInputError(f"eps must have shape (n_probes, {z.shape[0]}, {z.shape[1]}), "
                             f"got {tuple(eps.shape)}")
    keep_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        z_in = _graph_input(z)
        y = g(z_in)
        total = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
        for e in eps:
            w = e
            for k in range(1, n_terms + 1):
                (w,) = torch.autograd.grad(y, z_in, w, retain_graph=True, create_graph=keep_graph)
                total = total + (-1) ** (k + 1) / k * (w * e).sum(dim=1)
        total = total / eps.shape[0]
    return total if keep_graph else total.detach()


class ResidualFlow(Flow):
    """An invertible residual block, ``x = f(z) = z + g(z)`` with ``Lip(g) <= c < 1``.

    ``g`` is ``SpectralLinear -> LipSwish -> ... -> SpectralLinear`` with ``n_hidden``
    hidden layers, each linear layer of spectral norm at most ``c``. Forward is one pass;
    the inverse iterates ``z <- x - g(z)`` from ``z = x``, which gains a factor ``c`` per
    step, until the update is below ``tol`` (raised to a few rounding units in float32),
    and raises ``FlowInputError`` if ``max_iter`` steps are not enough. The inverse is
    differentiated implicitly: ``(I + J_g) dz = dx - dg``, solved by the same iteration.
    Both iterations stop per sample: each sample's tolerance depends on that sample only.

    A new ``ResidualFlow`` is in evaluation mode: every call sees the same normalised
    weights, so a density does not drift between calls and the round trip is exact to the
    tolerance. Power iteration moves its vectors only in training mode (``.train()``, which
    ``course_lib.training.fit`` sets while it trains); call ``.train()`` in a training loop
    of your own, so that the spectral estimate follows the changing weights.

    Args:
        dim: number of coordinates ``d``.
        hidden: width of the hidden layers of ``g``.
        n_hidden: number of hidden layers of ``g``.
        lipschitz: ``c`` in ``(0, 1)``, the bound on each layer's spectral norm.
        n_power_iterations: power-iteration steps per call (stored back in training mode).
        logdet: ``"exact"`` (autograd Jacobian) or ``"series"`` (power series + Hutchinson;
            random probes, so forward and inverse report independent estimates).
        n_terms: terms of the series.
        n_probes: Hutchinson probes per sample for the series.
        tol: tolerance of the fixed-point iteration (largest change of any coordinate).
        max_iter: most fixed-point steps before giving up.

    Example:
        >>> flow = ResidualFlow(2).eval()
        >>> z, logdet = flow.inverse(torch.randn(5, 2))
    """

    def __init__(self, dim: int, hidden: int = 64, n_hidden: int = 2, lipschitz: float = 0.9,
                 n_power_iterations: int = 5, logdet: str = "exact", n_terms: int = 10,
                 n_probes: int = 1, tol: float = 1e-10, max_iter: int = 1000):
        where = "ResidualFlow"
        dim, hidden, n_hidden = (positive_int(v, n, where) for v, n in
                                 ((dim, "dim"), (hidden, "hidden"), (n_hidden, "n_hidden")))
        n_power_iterations = nonnegative_int(n_power_iterations, "n_power_iterations", where)
        n_terms, n_probes, max_iter = (positive_int(v, n, where) for v, n in
                                       ((n_terms, "n_terms"), (n_probes, "n_probes"),
                                        (max_iter, "max_iter")))
        lipschitz = positive_float(lipschitz, "lipschitz", where)
        if not lipschitz < 1:
            raise CourseValueError("ResidualFlow: expected lipschitz (the contraction factor c) "
                                   "in (0, 1); with c >= 1 the block may not be invertible; got "
                                   f"{lipschitz!r}")
        if logdet not in ("exact", "series"):
            raise CourseValueError(f"ResidualFlow: expected logdet 'exact' or 'series', "
                                   f"got {logdet!r}")
        tol = positive_float(tol, "tol", where)
        super().__init__((dim,))
        sizes = [dim] + [hidden] * n_hidden + [dim]
        self.layers = nn.ModuleList(SpectralLinear(a, b, float(lipschitz), n_power_iterations)
                                    for a, b in zip(sizes[:-1], sizes[1:]))
        self.lipschitz, self.logdet, self.n_terms, self.n_probes = float(lipschitz), logdet, n_terms, n_probes
        self.tol, self.max_iter = float(tol), max_iter
        self.eval()  # see the class docstring: no drift between calls unless training

    def branch(self) -> Callable[[Tensor], Tensor]:
        """The residual branch ``g`` with its layers normalised once, now.

        Within one call of ``forward`` or ``inverse`` every evaluation of ``g`` then uses
        the same weights, even in training mode where power iteration moves on.
        """
        weights = [(layer.normalised_weight(), layer.bias) for layer in self.layers]

        def g(z: Tensor) -> Tensor:
            h = z
            for k, (w, b) in enumerate(weights):
                h = F.linear(h, w, b)
                if k < len(weights) - 1:
                    h = lipswish(h)
            return h
        return g

    def log_abs_det(self, g: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
        if self.logdet == "exact":
            return log_abs_det_exact(g, z)
        return log_abs_det_series(g, z, self.n_terms, self.n_probes)

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        g = self.branch()
        return z + g(z), self.log_abs_det(g, z)

    def _tolerance(self, x: Tensor) -> Tensor:
        """The stopping tolerance of each sample, shape ``(batch,)``.

        ``tol``, raised where it is below rounding: in float32 a tolerance of 1e-10 cannot
        be met, the iterates stall a few ulps from the fixed point, about
        ``eps * max_i |x_i| / (1 - c)`` for that sample.
        """
        scale = x.detach().abs().amax(dim=1).clamp_min(1.0)
        rounding = 4 * torch.finfo(x.dtype).eps * scale / (1 - self.lipschitz)
        return rounding.clamp_min(self.tol)

    def fixed_point(self, g: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
        """Solve ``z + g(z) = x`` by ``z <- x - g(z)``, starting from ``z = x``, until every
        sample's largest change is below its own tolerance."""
        tol = self._tolerance(x)
        z, change = x, torch.full_like(tol, float("inf"))
        with torch.no_grad():
            for _ in range(self.max_iter):
                z_next = x - g(z)
                change = (z_next - z).abs().amax(dim=1)
                z = z_next
                if bool((change <= tol).all()):
                    return z
        worst = int((change / tol).argmax())
        raise FlowInputError(
            f"ResidualFlow.inverse: the fixed-point iteration z <- x - g(z) did not converge in "
            f"max_iter={self.max_iter} steps (sample {worst}: last change "
            f"{change[worst].item():.3g}, tolerance {tol[worst].item():.3g}); raise max_iter or "
            "tol, or check that the input is not extremely large")

    def _implicit_gradient(self, g: Callable[[Tensor], Tensor], x: Tensor, z: Tensor) -> Tensor:
        """``z`` again, now with the gradient of the inverse attached.

        ``z = x - g(z)`` gives ``(I + J_g) dz = dx - dg``, so a gradient ``a`` arriving at
        ``z`` is replaced by ``w = (I + J_g)^{-T} a``, the fixed point of ``w <- a - J_g^T w``.
        """
        z_star = z.detach().requires_grad_(True)
        with torch.enable_grad():
            g_star = g(z_star)
            z_out = x - g_star
        tol = self._tolerance(x)

        def solve(a: Tensor | None) -> Tensor | None:
            if a is None:  # an undefined gradient (nothing depends on z) stays undefined
                return None
            # per sample: the tolerance of row i scales with that row of a only
            limit = tol * a.abs().amax(dim=1).clamp_min(1.0)
            w = a
            for _ in range(self.max_iter):
                (vjp,) = torch.autograd.grad(g_star, z_star, w, retain_graph=True)
                w_next = a - vjp
                done = bool(((w_next - w).abs().amax(dim=1) <= limit).all())
                w = w_next
                if done:
                    return w
            raise FlowInputError(f"ResidualFlow.inverse: the backward fixed-point iteration did "
                                 f"not converge in max_iter={self.max_iter} steps")
        z_out.register_hook(solve)
        # a separate node, so a gradient taken with respect to the returned z (as the
        # log-determinant does) is not passed through ``solve``
        return z_out.clone()

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        g = self.branch()
        z = self.fixed_point(g, x)
        if torch.is_grad_enabled():
            z = self._implicit_gradient(g, x, z)
        return z, -self.log_abs_det(g, z)

    def extra_repr(self) -> str:
        return f"dim={self.event_shape[0]}, lipschitz={self.lipschitz}, logdet={self.logdet!r}"
