"""Memory that autograd holds for a backward pass, measured from the tensors it saves.

Lecture 10 compares backpropagating through an ODE solver (memory grows with the number of
steps) with the adjoint method (flat): :func:`backprop_memory` measures both for a CNF model, with
:func:`saved_tensor_bytes` counting the storages the graph of a result keeps alive. The
numbers depend only on the sizes of the tensors, not on the machine.

Example:
    >>> a = torch.randn(100, dtype=torch.float64, requires_grad=True)
    >>> saved_tensor_bytes(lambda: (a * a).sum())   # a is saved once: 100 float64 values
    800
"""
from __future__ import annotations

import weakref
from typing import Callable, Sequence

import torch
from torch.distributions import Independent, Normal

from ..validation import CourseValueError, positive_int

__all__ = ["saved_tensor_bytes", "backprop_memory"]


class _SavedTensor:
    """What autograd stores in place of a saved tensor while it is being measured."""

    __slots__ = ("tensor", "__weakref__")

    def __init__(self, tensor: torch.Tensor):
        self.tensor = tensor


def saved_tensor_bytes(compute: Callable[[], torch.Tensor]) -> int:
    """Bytes of the tensors that autograd holds for the backward pass of ``compute()``.

    Every tensor saved for backward while ``compute`` runs is wrapped; once it returns,
    the wrappers still alive are the ones the graph of its result keeps (those of graphs
    already freed, e.g. an inner derivative, are gone). Each storage counts once, however
    many saved views of it there are; parameters count too.
    """
    alive: weakref.WeakSet = weakref.WeakSet()

    def pack(tensor: torch.Tensor) -> _SavedTensor:
        saved = _SavedTensor(tensor)
        alive.add(saved)
        return saved

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda saved: saved.tensor):
        result = compute()
    storages = {}
    for saved in list(alive):
        storage = saved.tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
    del result
    return int(sum(storages.values()))


def backprop_memory(model, x: torch.Tensor, step_counts: Sequence[int]) -> dict[str, list[int]]:
    """Memory held for the backward pass of ``model.forward_kl(x)``, with rk4 in ``n`` equal
    steps for each ``n`` of ``step_counts``: ``{"direct": [...], "adjoint": [...]}`` in bytes.

    ``model`` is a ``NormalizingFlow`` around one CNF (``models.cnf``), or a bare ``CNF``,
    measured on a standard normal base. Direct backpropagation keeps every intermediate value
    of every solver step; the adjoint method keeps the states at the requested times only.
    The CNF's solver settings are restored afterwards.
    """
    from ..continuous import cnf_layer
    from ..model import NormalizingFlow
    cnf = cnf_layer(model, "backprop_memory")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise CourseValueError(f"backprop_memory: expected x to be a floating-point tensor, got "
                               f"{type(x).__name__}")
    step_counts = [positive_int(n, "every step count", "backprop_memory") for n in step_counts]
    if model is cnf:
        zeros = torch.zeros(cnf.dim, dtype=x.dtype, device=x.device)
        model = NormalizingFlow(Independent(Normal(zeros, torch.ones_like(zeros)), 1), [cnf])
    settings = (cnf.method, cnf.options, cnf.adjoint)
    memory: dict[str, list[int]] = {"direct": [], "adjoint": []}
    try:
        for name in memory:
            cnf.adjoint = name == "adjoint"
            for n in step_counts:
                cnf.method, cnf.options = "rk4", {"step_size": 1.0 / n}
                memory[name].append(saved_tensor_bytes(lambda: model.forward_kl(x)))
    finally:
        cnf.method, cnf.options, cnf.adjoint = settings
    return memory
