"""Argument and value checks shared by every module, and the switch for the value checks.

Two kinds of checks guard the library:

* **Structural checks** (type, shape, dtype, device, constructor arguments) are free and
  always run.
* **Value checks** look at the numbers (``isfinite`` scans, comparisons read with ``.item()``).
  They run while validation is on, the default, and can be switched off torch-style, so that
  ``torch.func`` transforms and ``torch.compile`` see no data-dependent branches::

      course_lib.set_validation(False)          # for the rest of the session
      with course_lib.validation(False):        # for one block
          ...

Every failure raises :class:`CourseValueError` (a ``ValueError``) whose message names where it
happened, what was expected and what was given.
"""
from __future__ import annotations

import contextlib
import math
import numbers
from typing import Iterator

import torch
from torch import Tensor, nn

__all__ = ["CourseValueError", "set_validation", "is_validating", "validation",
           "positive_int", "nonnegative_int", "positive_float", "finite_float",
           "check_finite", "check_finite_parameters"]

_ENABLED = True


class CourseValueError(ValueError):
    """A value, shape, dtype or argument the library cannot accept."""


def set_validation(enabled: bool) -> None:
    """Switch the value checks on (the default) or off for the whole process."""
    global _ENABLED
    if not isinstance(enabled, bool):
        raise CourseValueError(f"set_validation: expected True or False, got {enabled!r}")
    _ENABLED = enabled


def is_validating() -> bool:
    """Whether value checks (non-finite scans, parameter checks) run."""
    return _ENABLED


@contextlib.contextmanager
def validation(enabled: bool) -> Iterator[None]:
    """Switch the value checks on or off inside a ``with`` block, then restore the setting."""
    previous = is_validating()
    set_validation(enabled)
    try:
        yield
    finally:
        set_validation(previous)


def _where(where: str) -> str:
    return f"{where}: " if where else ""


def positive_int(value, name: str, where: str = "", minimum: int = 1) -> int:
    """``value`` as an ``int`` of at least ``minimum`` (bools and floats are refused)."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or isinstance(value, Tensor)):
        raise CourseValueError(f"{_where(where)}expected {name} to be an integer >= {minimum}, "
                               f"got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise CourseValueError(f"{_where(where)}expected {name} to be an integer >= {minimum}, "
                               f"got {value!r}")
    return int(value)


def nonnegative_int(value, name: str, where: str = "") -> int:
    """``value`` as an ``int`` >= 0."""
    return positive_int(value, name, where, minimum=0)


def _real(value, name: str, where: str, kind: str) -> float:
    """``value`` as a ``float``: a Python real (not a bool) or a one-element tensor."""
    if isinstance(value, Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise CourseValueError(f"{_where(where)}expected {name} to be {kind}, "
                               f"got {value!r} ({type(value).__name__})")
    return float(value)


def finite_float(value, name: str, where: str = "") -> float:
    """``value`` as a finite ``float`` (a Python number or a one-element tensor)."""
    value = _real(value, name, where, "a real number")
    if not math.isfinite(value):
        raise CourseValueError(f"{_where(where)}expected {name} to be finite, got {value!r}")
    return value


def positive_float(value, name: str, where: str = "", allow_inf: bool = False) -> float:
    """``value`` as a ``float`` > 0 (finite unless ``allow_inf``)."""
    value = _real(value, name, where, "a positive number")
    if math.isnan(value) or value <= 0 or (math.isinf(value) and not allow_inf):
        kind = "a positive number" if allow_inf else "a finite positive number"
        raise CourseValueError(f"{_where(where)}expected {name} to be {kind}, got {value!r}")
    return value


def check_finite(x: Tensor, name: str, where: str = "") -> None:
    """Raise unless every entry of ``x`` is finite (a value check: skipped when validation is off)."""
    if not _ENABLED or x.device.type == "meta":  # a meta tensor has a shape but no values
        return
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        bad = int((~finite).sum().item())
        raise CourseValueError(f"{_where(where)}{name} contains {bad} non-finite value(s) (NaN or "
                               "inf); every entry must be finite")


def check_finite_parameters(module: nn.Module, where: str = "") -> None:
    """Raise naming the first parameter of ``module`` that holds a NaN or inf (a value check)."""
    if not _ENABLED:
        return
    for name, p in module.named_parameters():
        if p.device.type == "meta":
            continue
        if not bool(torch.isfinite(p).all()):
            raise CourseValueError(
                f"{_where(where)}parameter '{name}' contains non-finite values (NaN or inf); a "
                "diverged optimisation step or a bad assignment put them there: re-initialise it "
                "or load a saved state")
