"""Toy 2D densities and the 8x8 digits, all generated or shipped locally (no downloads).

``get(name)`` returns a data set with ``sample(n, generator=None)``; where the density
is known in closed form it also has ``log_prob(x)`` and ``entropy`` (in nats), so a
model's test NLL can be compared with the best value possible.

Example:
    >>> data = get("checkerboard")
    >>> data.sample(3, generator=torch.Generator().manual_seed(0)).shape
    torch.Size([3, 2])
    >>> data.log_prob(torch.tensor([[0.5, 0.5], [2.5, 0.5]]))   # a dark square, a light one
    tensor([-3.4657,    -inf])
"""
from __future__ import annotations

import math
from functools import cached_property

import torch
from torch import Tensor

from .validation import CourseValueError, check_finite, nonnegative_int

__all__ = ["get", "names", "Dataset", "EightGaussians", "Checkerboard", "TwoMoons", "Rings",
           "Pinwheel", "Digits"]


def sample_request(n, generator, where: str) -> int:
    """``n`` as an int >= 0, after checking that ``generator`` is a ``torch.Generator`` or
    ``None``: the arguments of every ``sample(n, generator=None)`` of data sets and targets."""
    n = nonnegative_int(n, "the number of samples n", where)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise CourseValueError(
            f"{where}: expected generator to be a torch.Generator or None, got {generator!r} "
            f"({type(generator).__name__}); for a seed, pass torch.Generator().manual_seed(seed)")
    return n


class Dataset:
    """A distribution one can sample from; ``log_prob`` and ``entropy`` where analytic."""

    name: str = ""
    dim: int = 2
    has_density: bool = False

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` samples (``n = 0`` gives an empty batch), shape ``(n, dim)``, in torch's default
        dtype, drawn with ``generator`` (a ``torch.Generator``; the global one if ``None``)."""
        n = sample_request(n, generator, f"{self.name}.sample")
        return self._sample(n, generator).to(torch.get_default_dtype())

    def _sample(self, n: int, generator: torch.Generator | None) -> Tensor:
        raise NotImplementedError

    def log_prob(self, x: Tensor) -> Tensor:
        raise NotImplementedError(f"{self.name} has no closed-form density")

    @property
    def entropy(self) -> float:
        raise NotImplementedError(f"{self.name} has no closed-form density")

    def _check(self, x: Tensor, method: str = "log_prob") -> Tensor:
        """``x`` checked (shape always, finiteness while validating); integer and boolean
        points are cast to torch's default floating dtype, so densities never overflow."""
        where = f"{self.name}.{method}"
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != self.dim:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise CourseValueError(f"{where}: expected shape (batch, {self.dim}), got {got}")
        if x.is_complex():
            raise CourseValueError(f"{where}: expected real points, got dtype {x.dtype}")
        if not x.is_floating_point():
            x = x.to(torch.get_default_dtype())
        check_finite(x, "x", where)
        return x

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _grid_entropy(log_prob, half_width: float, n: int = 2001) -> float:
    """``-integral p log p`` by the trapezoid rule on a fine grid (spectrally accurate for
    smooth densities that vanish at the edges)."""
    t = torch.linspace(-half_width, half_width, n, dtype=torch.float64)
    xx, yy = torch.meshgrid(t, t, indexing="ij")
    lp = log_prob(torch.stack([xx.flatten(), yy.flatten()], dim=1))
    h = (t[1] - t[0]).item()
    return float(-(lp.exp() * lp).nan_to_num().sum() * h * h)


class EightGaussians(Dataset):
    """Equal mixture of 8 isotropic Gaussians with means on a circle.

    Means at radius ``2*sqrt(2)`` and angles ``k*pi/4``; standard deviation
    ``sqrt(2)/4``. Neighbouring means are about 6 standard deviations apart.
    """

    name, has_density = "eight_gaussians", True
    radius, std = 2 * math.sqrt(2), math.sqrt(2) / 4

    def centers(self, dtype=torch.float64, device=None) -> Tensor:
        angle = torch.arange(8, dtype=dtype, device=device) * math.pi / 4
        return self.radius * torch.stack([angle.cos(), angle.sin()], dim=1)

    def _sample(self, n, generator):
        k = torch.randint(0, 8, (n,), generator=generator)
        noise = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        return self.centers()[k] + self.std * noise

    def log_prob(self, x: Tensor) -> Tensor:
        x = self._check(x)
        c = self.centers(x.dtype, x.device)
        sq = ((x[:, None, :] - c[None]) ** 2).sum(-1) / self.std ** 2
        return torch.logsumexp(-0.5 * sq, dim=1) - math.log(8) - math.log(2 * math.pi * self.std ** 2)

    @cached_property
    def _entropy(self) -> float:
        return _grid_entropy(self.log_prob, self.radius + 10 * self.std)

    @property
    def entropy(self) -> float:
        return self._entropy


class Checkerboard(Dataset):
    """Uniform on the 8 dark squares of a 4x4 board covering ``[-4, 4]^2`` (squares of side 2).

    A square ``(i, j)`` (column, row, counted from the lower left from 0) is occupied
    when ``i + j`` is even. Density ``1/32`` there, so the entropy is ``log 32``.
    """

    name, has_density = "checkerboard", True

    def _sample(self, n, generator):
        x1 = torch.rand(n, generator=generator, dtype=torch.float64) * 8 - 4
        col = torch.floor(x1 / 2) + 2
        row = 2 * torch.randint(0, 2, (n,), generator=generator) + (col % 2)
        x2 = (row - 2) * 2 + 2 * torch.rand(n, generator=generator, dtype=torch.float64)
        return torch.stack([x1, x2], dim=1)

    def log_prob(self, x: Tensor) -> Tensor:
        x = self._check(x)
        inside = (x.abs() < 4).all(dim=1)
        cells = torch.floor(x / 2) + 2
        dark = ((cells[:, 0] + cells[:, 1]) % 2 == 0) & inside
        out = torch.full(x.shape[:1], -math.inf, dtype=x.dtype, device=x.device)
        return out.masked_fill(dark, -math.log(32))

    @property
    def entropy(self) -> float:
        return math.log(32)


class TwoMoons(Dataset):
    """Two interleaved half circles with Gaussian noise (std 0.1), centred and scaled by 2."""

    name = "two_moons"

    def _sample(self, n, generator):
        t = torch.rand(n, generator=generator, dtype=torch.float64) * math.pi
        upper = torch.rand(n, generator=generator) < 0.5
        x = torch.where(upper, t.cos(), 1 - t.cos())
        y = torch.where(upper, t.sin(), 0.5 - t.sin())
        pts = torch.stack([x - 0.5, y - 0.25], dim=1) * 2
        return pts + 0.1 * torch.randn(n, 2, generator=generator, dtype=torch.float64)

    # each moon is a half circle of radius 2: (centre, +1 for the upper half, -1 for the lower)
    MOONS = (((-1.0, -0.5), 1.0), ((1.0, 0.5), -1.0))

    def nearest_moon(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """For every point, its distance to the nearest moon's centre line (a half circle of
        radius 2 before the noise of std 0.1) and which moon that is (0 upper, 1 lower).

        About 99.7 % of the data lie within 0.3 of a centre line, so the share of a model's
        samples within 0.3, moon by moon, says whether it found both moons.
        """
        x = self._check(x, "nearest_moon")
        distances = []
        for (cx, cy), side in self.MOONS:
            dx, dy = x[:, 0] - cx, x[:, 1] - cy
            on_arc_side = side * dy >= 0
            to_arc = ((dx ** 2 + dy ** 2).sqrt() - 2).abs()
            to_ends = torch.minimum(((dx + 2) ** 2 + dy ** 2).sqrt(), ((dx - 2) ** 2 + dy ** 2).sqrt())
            distances.append(torch.where(on_arc_side, to_arc, to_ends))
        distance, moon = torch.stack(distances, dim=1).min(dim=1)
        return distance, moon


class Rings(Dataset):
    """Four concentric rings (radii 1, 2, 3, 4 scaled to fit ``[-4, 4]``) with radial noise."""

    name = "rings"

    def _sample(self, n, generator):
        ring = torch.randint(1, 5, (n,), generator=generator).to(torch.float64)
        angle = torch.rand(n, generator=generator, dtype=torch.float64) * 2 * math.pi
        r = ring * 0.9 + 0.08 * torch.randn(n, generator=generator, dtype=torch.float64)
        return torch.stack([r * angle.cos(), r * angle.sin()], dim=1)


class Pinwheel(Dataset):
    """Five curved arms: Gaussian blobs stretched along a spiral (as in the FFJORD toy data)."""

    name = "pinwheel"

    def _sample(self, n, generator):
        arms, radial_std, tangential_std, rate = 5, 0.3, 0.1, 0.25
        k = torch.randint(0, arms, (n,), generator=generator)
        feats = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        feats = feats * torch.tensor([radial_std, tangential_std], dtype=torch.float64)
        feats[:, 0] += 1.0
        angle = k.to(torch.float64) * 2 * math.pi / arms + rate * torch.exp(feats[:, 0])
        c, s = angle.cos(), angle.sin()
        rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
        return 2 * torch.einsum("nij,nj->ni", rot, feats)


class Digits(Dataset):
    """The 8x8 handwritten digits bundled with scikit-learn (1797 images, 17 grey levels 0..16).

    ``sample`` draws images with replacement as ``(n, 64)`` vectors of integer values;
    ``images`` holds all of them as ``(1797, 1, 8, 8)`` and ``labels`` the digit classes.
    """

    name, dim, levels = "digits", 64, 17

    @cached_property
    def _data(self):
        from sklearn.datasets import load_digits  # ships with scikit-learn, no download
        bunch = load_digits()
        return (torch.as_tensor(bunch.data, dtype=torch.float64),
                torch.as_tensor(bunch.target, dtype=torch.long))

    @property
    def images(self) -> Tensor:
        return self._data[0].reshape(-1, 1, 8, 8).to(torch.get_default_dtype())

    @property
    def labels(self) -> Tensor:
        return self._data[1]

    def _sample(self, n, generator):
        idx = torch.randint(0, self._data[0].shape[0], (n,), generator=generator)
        return self._data[0][idx]


_REGISTRY = {cls.name: cls for cls in (TwoMoons, EightGaussians, Checkerboard, Rings, Pinwheel, Digits)}
names = tuple(_REGISTRY)


def get(name: str) -> Dataset:
    """The data set called ``name``: one of ``names``."""
    if name not in _REGISTRY:
        raise CourseValueError(f"datasets.get: unknown data set {name!r}; choose one of "
                               f"{', '.join(names)}")
    return _REGISTRY[name]()
