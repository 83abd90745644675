"""Re-execute notebooks in place: ``python -m course_lib.execute PATH... [--timeout SECONDS]``.

Each notebook runs top to bottom in a fresh kernel of the Python that runs this command
(not whichever kernel happens to be registered as ``python3``), with the notebook's
folder as working directory and a time limit per cell, so the committed outputs are the
ones ``pytest --nbval-lax --nbval-current-env`` reproduces. The kernel talks over local IPC
sockets (no TCP port, no warning about an unencrypted one).

The saved file is made for reading before running (see :func:`finish_for_static_view`): the
widget state is kept, with model ids numbered deterministically, so a renderer that uses it
shows each widget at its stored value; a progress bar's plain-text fallback shows its finished
state; consecutive prints of a cell are stored as one output; each image carries the one-line
``alt`` text of its cell's metadata; object addresses and random element ids are replaced by
stable ones. Execution timestamps are not recorded, so re-executing an unchanged notebook
changes only lines that report timings.

A notebook that raises is left untouched on disk; the command names the failing cell and
exits with status 1.
"""
from __future__ import annotations

import argparse
import hashlib
import html
import json
import os
import pathlib
import re
import sys
import tempfile
import time
import uuid
from typing import Sequence

import ipykernel.kernelspec
import nbformat
from jupyter_client import AsyncKernelManager
from jupyter_core.utils import run_sync
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
    # IPC sockets need an absolute path: the kernel starts in the notebook's folder
    sockets = os.path.join(tempfile.gettempdir(), f"course-kernel-{uuid.uuid4().hex[:12]}")
    return AsyncKernelManager(kernel_name=CURRENT_ENVIRONMENT, transport="ipc", ip=sockets,
                              kernel_spec_manager=_CurrentEnvironmentSpecs())


def _kernel_environment() -> dict[str, str]:
    env = dict(os.environ)
    # a backend inherited from the caller (Agg in a test run, say) would keep figures
    # out of the notebook; the kernel then picks its inline backend itself
    env.pop("MPLBACKEND", None)
    return env


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
_HEX_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")
_ADDRESS = re.compile(r" at 0x[0-9a-f]+>")
_TAGS = re.compile(r"<[^>]+>")


def strip_volatile_metadata(nb: nbformat.NotebookNode) -> None:
    """Remove what changes from run to run without changing the notebook's content."""
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)


def _renumber_widgets(nb: nbformat.NotebookNode, salt: str) -> None:
    """Replace the random widget model ids by ids derived from the notebook and their order."""
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    ids = {old: hashlib.sha1(f"{salt}:{i}".encode()).hexdigest()[:32]
           for i, old in enumerate(state)}
    if not ids:
        return
    pattern = re.compile("|".join(map(re.escape, ids)))
    for key in ("widgets",):
        text = pattern.sub(lambda m: ids[m.group(0)], json.dumps(nb.metadata[key]))
        nb.metadata[key] = nbformat.from_dict(json.loads(text))
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET_VIEW)
            if view and view.get("model_id") in ids:
                view["model_id"] = ids[view["model_id"]]


def _progress_text(state: dict, model_id: str) -> str | None:
    """tqdm's bar as text, from the saved state of its HBox(label, progress, info)."""
    box = state.get(model_id, {}).get("state", {})
    children = [c.removeprefix("IPY_MODEL_") for c in box.get("children", [])]
    if box.get("_model_name") != "HBoxModel" or len(children) != 3:
        return None
    label, bar, info = (state.get(c, {}).get("state", {}) for c in children)
    if bar.get("_model_name") not in ("FloatProgressModel", "IntProgressModel"):
        return None
    value, top = bar.get("value", 0), bar.get("max", 0) or 1
    def text(part: dict) -> str:
        plain = html.unescape(_TAGS.sub("", part.get("value", "")))
        return plain.replace("\xa0", " ").replace("\u2007", " ")
    filled = int(10 * value / top)
    return f"{text(label)}|{'█' * filled}{' ' * (10 - filled)}|{text(info)}"


def coalesce_streams(nb: nbformat.NotebookNode) -> None:
    """Join consecutive outputs of the same stream of a cell into one.

    How a kernel splits what a cell prints into messages depends on timing; joined, the same
    printed text is stored the same way on every run.
    """
    for cell in nb.cells:
        merged = []
        for out in cell.get("outputs", []):
            if (out.output_type == "stream" and merged and merged[-1].output_type == "stream"
                    and merged[-1].name == out.name):
                merged[-1].text += out.text
            else:
                merged.append(out)
        if "outputs" in cell:
            cell.outputs = merged


def finish_for_static_view(nb: nbformat.NotebookNode, salt: str) -> None:
    """Make the stored outputs show what a reader of the unexecuted notebook should see."""
    coalesce_streams(nb)
    _renumber_widgets(nb, salt)
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    renamed: dict[str, str] = {}
    for cell in nb.cells:
        alt = cell.metadata.get("alt")
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            view = data.get(WIDGET_VIEW)
            # nbval compares a checked cell with a live run, whose bar text is the initial one
            if view and not cell.source.startswith("# NBVAL_CHECK_OUTPUT"):
                bar = _progress_text(state, view.get("model_id", ""))
                if bar is not None:
                    data["text/plain"] = bar
            if "text/plain" in data:
                data["text/plain"] = _ADDRESS.sub(">", data["text/plain"])
            if alt and "image/png" in data:
                out.setdefault("metadata", {}).setdefault("image/png", {})["alt"] = alt
            if "text/html" in data and "<img" in data["text/html"]:
                page = data["text/html"]

                def stable(match):  # the same random id gets the same stable one everywhere
                    if match.group(0) not in renamed:
                        renamed[match.group(0)] = hashlib.sha1(
                            f"{salt}:html:{len(renamed)}".encode()).hexdigest()[:32]
                    return renamed[match.group(0)]
                page = _HEX_ID.sub(stable, page)
                if alt:
                    page = re.sub(r"<img(?![^>]*\balt=)", f'<img alt="{html.escape(alt)}"', page)
                data["text/html"] = page


def _shut_down(km) -> None:
    """Stop the kernel and remove its sockets (nbclient leaves a kernel it was handed running)."""
    if km is None:
        return
    try:
        if run_sync(km.is_alive)():
            run_sync(km.shutdown_kernel)(now=True)
        km.cleanup_resources()
    except Exception:  # the kernel may be gone already; nothing is left to stop
        pass


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
        client.execute(env=_kernel_environment(), cleanup_kc=True)
    except CellTimeoutError as error:
        raise NotebookFailed(f"{shown}: a cell ran longer than the limit of {timeout:g} s "
                             f"({str(error).splitlines()[0]})") from None
    except CellExecutionError:
        raise NotebookFailed(f"{shown}: {_failing_cell(nb)}") from None
    finally:
        _shut_down(client.km)
    elapsed = time.perf_counter() - start
    strip_volatile_metadata(nb)
    finish_for_static_view(nb, path.stem)
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
