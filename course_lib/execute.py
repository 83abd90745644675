"""Re-execute notebooks in place: ``python -m course_lib.execute PATH... [--timeout SECONDS]``.

Each notebook runs top to bottom in a fresh kernel of the Python that runs this command
(not whichever kernel happens to be registered as ``python3``), with the notebook's
folder as working directory and a time limit per cell, so the committed outputs are the
ones ``pytest --nbval-lax --nbval-current-env`` reproduces. Execution timestamps are not
recorded and old ones are removed, so running it twice changes little in ``git diff``.

A notebook that raises is left untouched on disk; the command names the failing cell and
exits with status 1.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time
from typing import Sequence

import ipykernel.kernelspec
import nbformat
from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

__all__ = ["execute_notebook", "kernel_manager", "NotebookFailed", "main"]

CURRENT_ENVIRONMENT = "course-current-environment"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


class NotebookFailed(RuntimeError):
    """A cell raised or ran out of time; the message names the notebook and the cell."""


class _CurrentEnvironmentSpecs(KernelSpecManager):
    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        if kernel_name == CURRENT_ENVIRONMENT:
            return KernelSpec(resource_dir=ipykernel.kernelspec.RESOURCES,
                              **ipykernel.kernelspec.get_kernel_dict())
        return super().get_kernel_spec(kernel_name)


def kernel_manager() -> AsyncKernelManager:
    """A manager for a fresh kernel of the Python running this code."""
    return AsyncKernelManager(kernel_name=CURRENT_ENVIRONMENT,
                              kernel_spec_manager=_CurrentEnvironmentSpecs())


def _kernel_environment() -> dict[str, str]:
    env = dict(os.environ)
    # a backend inherited from the caller (Agg in a test run, say) would keep figures
    # out of the notebook; the kernel then picks its inline backend itself
    env.pop("MPLBACKEND", None)
    return env


def strip_volatile_metadata(nb: nbformat.NotebookNode) -> None:
    """Remove what changes from run to run without changing the notebook's content."""
    # saved widget state is a fresh set of random model ids and a second copy of every
    # figure at each run; the course's widgets carry their own static picture instead
    nb.metadata.pop("widgets", None)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)


def _failing_cell(nb: nbformat.NotebookNode) -> str:
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                first_line = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
                return (f"cell {index + 1} (execution count {cell.execution_count}, "
                        f"starting {first_line!r}): {output.ename}: {output.evalue}")
    return "a cell"


def execute_notebook(path: str | os.PathLike, timeout: float = 120.0) -> float:
    """Execute the notebook at ``path`` in a fresh kernel and save it; return the wall time.

    Raises:
        NotebookFailed: a cell raised or exceeded ``timeout`` seconds (the file is kept as it was).
    """
    shown = os.fspath(path)
    path = pathlib.Path(path).resolve()
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, km=kernel_manager(), timeout=timeout, record_timing=False,
                            allow_errors=False,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    try:
        client.execute(env=_kernel_environment())
    except CellTimeoutError as error:
        raise NotebookFailed(f"{shown}: a cell ran longer than the limit of {timeout:g} s "
                             f"({str(error).splitlines()[0]})") from None
    except CellExecutionError:
        raise NotebookFailed(f"{shown}: {_failing_cell(nb)}") from None
    elapsed = time.perf_counter() - start
    strip_volatile_metadata(nb)
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return elapsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.execute", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", metavar="PATH", help="notebooks to execute")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="time limit per cell, in seconds (default: 120)")
    args = parser.parse_args(argv)
    failed = 0
    for name in args.paths:
        try:
            elapsed = execute_notebook(name, timeout=args.timeout)
        except NotebookFailed as error:
            failed += 1
            print(f"FAILED {error}", flush=True)
        else:
            print(f"ok     {name}: {elapsed:.1f} s", flush=True)
    if failed:
        print(f"{failed} of {len(args.paths)} notebook(s) failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
