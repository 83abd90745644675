"""Claims bound to computations: a sentence of a lecture that states a result, asserted.

A lecture that writes "the reverse-KL fit has the higher ESS" follows the sentence with a cell
that checks it on the computed values and prints the quantities it checked::

    # NBVAL_CHECK_OUTPUT
    claim("the reverse-KL fit has the higher ESS", ess["reverse"] > ess["forward"],
          reverse=ess["reverse"], forward=ess["forward"])

which prints ``✓ the reverse-KL fit has the higher ESS  (reverse = 0.82, forward = 0.61)``.
If a re-execution makes the claim false, ``claim`` raises :class:`ClaimError` and the cell
fails under nbval; if it only moves a printed quantity, nbval's output comparison fails. Either
way a false sentence cannot survive a run of the suite. Print quantities with the modest
precision the sentence needs (``digits``), so that a change of the last bits of a float does
not make the comparison flaky.
"""
from __future__ import annotations

import math
import numbers

import numpy as np
import torch

__all__ = ["ClaimError", "claim", "format_value"]


class ClaimError(AssertionError):
    """A lecture's claim does not hold for the values computed in this run."""


def format_value(value, digits: int = 2) -> str:
    """A number with ``digits`` decimals (a float), as an int, or ``str(value)``; tensors of one
    element are read as numbers."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        value = float(value)
        if not math.isfinite(value):
            return str(value)
        text = f"{value:.{digits}f}"
        return "0." + "0" * digits if text in ("-0." + "0" * digits,) else text
    return str(value)


def claim(statement: str, holds, digits: int = 2, **quantities) -> None:
    """Assert ``holds`` and print ``statement`` with the ``quantities`` it was checked on.

    Args:
        statement: the sentence of the lecture, as the student reads it.
        holds: the claim evaluated on the computed values (a bool, or a one-element tensor or
            NumPy array).
        digits: decimals for float quantities.
        quantities: the numbers the claim is about, printed ``name = value``.

    Raises:
        ClaimError: when ``holds`` is false; the message repeats the statement and the values.
        TypeError: when ``holds`` is not a truth value (a tensor of several elements, say).
    """
    if isinstance(holds, torch.Tensor):
        if holds.numel() != 1:
            raise TypeError(f"claim: expected one truth value, got a tensor of shape {tuple(holds.shape)}")
        holds = bool(holds.item())
    if isinstance(holds, (np.ndarray, np.generic)):
        if holds.size != 1 or holds.dtype != np.bool_:
            raise TypeError(f"claim: expected one truth value, got a NumPy {holds.dtype} of shape {holds.shape}")
        holds = bool(holds.item())
    if not isinstance(holds, (bool, numbers.Integral)):
        raise TypeError(f"claim: expected a truth value, got {type(holds).__name__}")
    shown = ", ".join(f"{name.replace('_', ' ')} = {format_value(v, digits)}"
                      for name, v in quantities.items())
    suffix = f"  ({shown})" if shown else ""
    if not holds:
        raise ClaimError(f"the lecture says: {statement!r}, but this run computed{suffix or ' otherwise'}")
    print(f"\u2713 {statement}{suffix}")
