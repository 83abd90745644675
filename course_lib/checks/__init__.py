"""Checks for the worksheets: ``course_lib.checks.<exercise_id>(answer)`` returns a
``CheckResult`` (``passed``, ``status``, ``message``) and displays it in the notebook.

Checks test properties of the answer on fresh random inputs against an independent
reference, so a hard-coded output does not pass, and they say what is wrong without
giving away the answer. Each check has ``draw``, ``probe`` and ``judge`` (see ``core``):
the grader probes inside the student's sandboxed kernel and judges in its own process.
"""
from __future__ import annotations

import importlib
import pkgutil

from .core import MIME, REGISTRY, STATUSES, CheckResult, check, probe_to_file

__all__ = ["CheckResult", "REGISTRY", "STATUSES", "MIME", "exercises_of", "probe_to_file"]

# every module named ws<NN> defines the checks of worksheet NN; their functions are
# exported here under their exercise ids (ex01_1, ex01_2, ...)
for _info in pkgutil.iter_modules(__path__):
    if _info.name.startswith("ws"):
        _module = importlib.import_module(f"{__name__}.{_info.name}")
        for _name in dir(_module):
            if _name.startswith("ex") and hasattr(getattr(_module, _name), "exercise"):
                globals()[_name] = getattr(_module, _name)
                __all__.append(_name)


def exercises_of(worksheet: str) -> list[str]:
    """Exercise ids of a worksheet (by file stem, e.g. ``"01_change_of_variables_1d"``), in order."""
    ids = [i for i, info in REGISTRY.items() if info.worksheet == worksheet]
    return sorted(ids, key=lambda i: int(i.split("_")[1]))
