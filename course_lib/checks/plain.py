"""Plain data: what a probe may hand from the student's kernel to the judge.

``plain(value)`` accepts ``torch.Tensor`` (exactly that class, or a ``Parameter``), ``bool``,
``int``, ``float``, ``str``, ``None`` (exactly these classes: a subclass whose ``__eq__``
lies is refused), numpy arrays and scalars, and lists, tuples and string-keyed dicts of
these. A model (a ``NormalizingFlow`` of course_lib layers, a CNF among them) becomes its
architecture plus its ``state_dict``; ``unplain`` rebuilds it into the library's own classes,
so the judge evaluates the library's ``log_prob``, never the student's. A function the
answer returns becomes a ``Handle`` that only ``call`` can use.

``validate(data)`` checks data loaded by the grader (``torch.load(weights_only=True)``)
against the same rules before anything reads it.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["NotPlain", "Handle", "plain", "plain_state", "unplain", "validate", "describe_model",
           "rebuild_model"]

MAX_ELEMENTS = 20_000_000  # per answer: far above any exercise, far below a memory bomb
_ACTIVATIONS = {"SiLU": nn.SiLU, "LeakyReLU": nn.LeakyReLU, "ReLU": nn.ReLU, "Tanh": nn.Tanh,
                "ELU": nn.ELU, "GELU": nn.GELU, "Softplus": nn.Softplus}
_TAG_MODEL, _TAG_HANDLE = "__course_model__", "__course_handle__"


class NotPlain(ValueError):
    """The answer is not plain data (a subclass, an unknown object, a foreign model)."""


class Handle:
    """Stands for a function the answer returned; ``call`` runs it (or, judging, replays it)."""

    def __init__(self, number: int):
        self.number = number


def _tensor(v: torch.Tensor, what: str) -> torch.Tensor:
    if type(v) not in (torch.Tensor, nn.Parameter):
        raise NotPlain(f"{what} is a {type(v).__name__}, a subclass of torch.Tensor: return a plain "
                       "torch.Tensor")
    if v.layout != torch.strided or v.is_complex() or v.device.type == "meta":
        raise NotPlain(f"{what} should be a dense real tensor with data")
    return torch.Tensor(v.detach().cpu()).clone()


def plain(value, handles: dict | None = None, what: str = "the answer", _budget=None):
    """A copy of ``value`` as plain data, or ``NotPlain`` saying what is wrong."""
    budget = _budget if _budget is not None else [MAX_ELEMENTS]
    t = type(value)
    if value is None or t in (bool, int, float, str):
        if t is str and len(value) > 100_000:
            raise NotPlain(f"{what} is a string of {len(value)} characters")
        return value
    if isinstance(value, torch.Tensor):
        out = _tensor(value, what)
        budget[0] -= out.numel()
        if budget[0] < 0:
            raise NotPlain(f"{what} holds more than {MAX_ELEMENTS} numbers")
        return out
    if t is np.ndarray:
        if value.dtype == object:
            raise NotPlain(f"{what} is a numpy array of Python objects")
        return plain(torch.from_numpy(np.array(value)), handles, what, budget)
    if isinstance(value, np.generic) and type(value).__module__ == "numpy":
        return plain(value.item(), handles, what, budget)
    if t in (list, tuple):
        items = [plain(v, handles, f"an element of {what}", budget) for v in value]
        return items if t is list else tuple(items)
    if t is dict:
        if not all(type(k) is str and not k.startswith("__course") for k in value):
            raise NotPlain(f"{what} is a dict whose keys are not all plain strings")
        return {k: plain(v, handles, f"{what}[{k!r}]", budget) for k, v in value.items()}
    if isinstance(value, nn.Module):
        return {_TAG_MODEL: describe_model(value, what), "state": plain_state(value, what)}
    if callable(value) and handles is not None and not isinstance(value, type):
        number = len(handles)
        handles[number] = value
        return {_TAG_HANDLE: number}
    raise NotPlain(f"{what} is a {t.__module__}.{t.__name__}; return a torch.Tensor, a number or "
                   "what the exercise asks for")


def plain_state(module: nn.Module, what: str = "the model") -> dict:
    """The module's ``state_dict`` as plain tensors."""
    state = module.state_dict()
    if not isinstance(state, dict):
        raise NotPlain(f"{what} has no usable state_dict")
    out = {}
    for k, v in state.items():
        if type(k) is not str or not isinstance(v, torch.Tensor):
            raise NotPlain(f"{what}'s state holds {type(v).__name__} under {k!r}")
        out[k] = _tensor(v, f"{what}'s parameter {k}")
    return out


def unplain(data, handles: dict | None = None):
    """Rebuild models and handles inside plain data; everything else is returned as is."""
    if type(data) is dict:
        if _TAG_MODEL in data:
            return rebuild_model(data[_TAG_MODEL], data["state"])
        if _TAG_HANDLE in data:
            return Handle(int(data[_TAG_HANDLE]))
        return {k: unplain(v, handles) for k, v in data.items()}
    if type(data) in (list, tuple):
        items = [unplain(v, handles) for v in data]
        return items if type(data) is list else tuple(items)
    return data


def validate(data, depth: int = 0) -> None:
    """Refuse anything but plain data in what the grader loaded from a sandbox."""
    if depth > 40:
        raise NotPlain("the data is nested too deeply")
    t = type(data)
    if data is None or t in (bool, int, float, str):
        return
    if t is torch.Tensor:
        if data.layout != torch.strided or data.device.type != "cpu":
            raise NotPlain("the data holds a tensor that is not dense, or not on the CPU")
        return
    if t in (list, tuple):
        for v in data:
            validate(v, depth + 1)
        return
    if t is dict:
        for k, v in data.items():
            if type(k) is not str:
                raise NotPlain("the data holds a dict with a key that is not a string")
            validate(v, depth + 1)
        return
    raise NotPlain(f"the data holds a {t.__name__}")


# --- models: architecture + state, rebuilt from the library's own classes ------------------

def _dim(flow, what) -> int:
    shape = getattr(flow, "event_shape", None)
    if not shape or len(shape) != 1 or not isinstance(shape[0], int):
        raise NotPlain(f"{what}: the grader rebuilds vector models only")
    return shape[0]


def _mlp_spec(net, what) -> dict:
    from ..flows.nets import MLP
    if type(net) is not MLP:
        raise NotPlain(f"{what}: its conditioner is a {type(net).__name__}; the grader rebuilds "
                       "the library's MLP conditioners only")
    linears = [m for m in net.net if type(m) is nn.Linear]
    acts = {type(m).__name__ for m in net.net if type(m) is not nn.Linear}
    if len(acts) > 1 or not acts <= set(_ACTIVATIONS):
        raise NotPlain(f"{what}: its conditioner uses {sorted(acts)}; supported activations are "
                       f"{sorted(_ACTIVATIONS)}")
    return {"hidden": linears[0].out_features if len(linears) > 1 else 1,
            "n_hidden": len(linears) - 1, "activation": acts.pop() if acts else "SiLU"}


def _layer_spec(flow, what) -> dict:
    from .. import flows as F
    from ..continuous import CNF, VectorField
    name = type(flow).__name__
    if type(flow) is CNF:
        field = flow.vector_field
        if type(field) is not VectorField:
            raise NotPlain(f"{what}: its vector field is a {type(field).__name__}; the grader "
                           "rebuilds CNFs with the library's VectorField only")
        # the solver settings are not carried: the judge evaluates with the library's defaults
        return {"type": name, "dim": _dim(flow, what), "hidden": field.linears[0].out_features,
                "layers": len(field.linears)}
    if type(flow) in (F.Affine, F.Planar, F.Radial, F.Reverse, F.Permutation):
        return {"type": name, "dim": _dim(flow, what)}
    if type(flow) is F.AffineCoupling and not flow.image:
        dim = _dim(flow, what)
        mask = [False] * dim
        for i in flow.index_b.tolist():
            mask[i] = True
        return {"type": name, "dim": dim, "mask": mask, "scale_bound": float(flow.scale_bound),
                **_mlp_spec(flow.conditioner, what)}
    raise NotPlain(f"{what} contains a {name} layer; the grader rebuilds models made of course_lib's "
                   "Affine, Planar, Radial, Reverse, Permutation, AffineCoupling and CNF layers only "
                   "(and of none of their subclasses)")


def describe_model(model: nn.Module, what: str = "the model") -> dict:
    """The architecture of a course_lib model, enough to rebuild it from its state."""
    from ..continuous import CNF
    from ..model import NormalizingFlow
    if type(model) is NormalizingFlow:
        if getattr(model, "_base_kind", None) != "normal":
            raise NotPlain(f"{what} has a custom base distribution; the grader rebuilds models on "
                           "a diagonal normal base (the default)")
        return {"type": "NormalizingFlow", "event_shape": list(model.base_loc.shape),
                "flows": [_layer_spec(f, f"{what}'s layer {i}") for i, f in enumerate(model.flows)]}
    if type(model) is CNF:
        raise NotPlain(f"{what} is a bare CNF, a flow without a base density; return the model "
                       "around it, NormalizingFlow(dim, [cnf]), as models.cnf builds")
    raise NotPlain(f"{what} is a {type(model).__name__}; return a course_lib NormalizingFlow "
                   "(not a subclass)")


def _int(spec, key, low=1, high=4096) -> int:
    v = spec.get(key)
    if type(v) is not int or not low <= v <= high:
        raise NotPlain(f"the model's {key} should be an integer in [{low}, {high}], got {v!r}")
    return v


def rebuild_model(spec: dict, state: dict) -> nn.Module:
    """A fresh library model with the architecture ``spec``, loaded with ``state``."""
    from .. import flows as F
    from ..continuous import CNF, VectorField
    from ..model import NormalizingFlow
    if type(spec) is not dict or type(state) is not dict:
        raise NotPlain("the model's description is not plain data")
    if spec.get("type") == "NormalizingFlow":
        shape = spec.get("event_shape")
        layers = spec.get("flows")
        if type(shape) is not list or len(shape) != 1 or type(layers) is not list or not layers \
                or len(layers) > 200:
            raise NotPlain("the model's description is not one of a vector NormalizingFlow")
        built = []
        for layer in layers:
            kind, dim = layer.get("type"), _int(layer, "dim")
            if kind in ("Affine", "Planar", "Radial", "Reverse", "Permutation"):
                built.append(getattr(F, kind)(dim))
            elif kind == "AffineCoupling":
                act = _ACTIVATIONS.get(layer.get("activation"))
                mask = layer.get("mask")
                if act is None or type(mask) is not list or len(mask) != dim:
                    raise NotPlain("the model's coupling layer is not one the grader can rebuild")
                built.append(F.AffineCoupling(dim, mask=torch.tensor(mask, dtype=torch.bool),
                                              hidden=_int(layer, "hidden"),
                                              n_hidden=_int(layer, "n_hidden", 0, 16), activation=act,
                                              scale_bound=float(layer.get("scale_bound", 3.0))))
            elif kind == "CNF":
                built.append(CNF(VectorField(dim, _int(layer, "hidden"),
                                             _int(layer, "layers", 1, 16))))
            else:
                raise NotPlain(f"the model has a layer of unknown type {kind!r}")
        model = NormalizingFlow(_int({"d": shape[0]}, "d"), built)
    else:
        raise NotPlain(f"the model has an unknown type {spec.get('type')!r}")
    if any(type(v) is torch.Tensor and v.dtype == torch.float64 for v in state.values()):
        model = model.double()
    reference = model.state_dict()
    if set(state) != set(reference):
        raise NotPlain("the model's parameters do not match its architecture")
    with torch.no_grad():
        for k, v in state.items():
            if type(v) is not torch.Tensor or v.shape != reference[k].shape:
                raise NotPlain(f"the model's parameter {k} has the wrong shape")
        model.load_state_dict({k: v.to(reference[k].dtype) for k, v in state.items()}, strict=True)
    return model
