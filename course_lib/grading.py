"""Grade worksheets: ``python -m course_lib.grading PATH... [--json OUT]``.

Each worksheet (a file, or every ``.ipynb`` in a folder) is copied to a temporary folder and
executed there in a fresh kernel with a time limit per cell, so the student's file is never
written. The results the checks displayed are collected; an exercise whose check never ran
is reported as an error with the reason (a cell that timed out, a kernel that died, a deleted
check cell). Prints a table per worksheet and optionally writes JSON:

``{"worksheets": [{"path", "exercises": [{"id", "status", "points", "max_points", "message"}],
"score", "max_score"}], "score", "max_score"}``

The exit code is 0 whenever grading could run, whatever the score.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import sys
import tempfile
import time

import nbformat

from .checks import MIME, REGISTRY, exercises_of

__all__ = ["grade_worksheet", "grade", "main"]


def _worksheet_key(path: pathlib.Path) -> str | None:
    stems = sorted({info.worksheet for info in REGISTRY.values()})
    for stem in stems:
        if path.stem == stem or path.stem[:2] == stem[:2]:
            return stem
    return None


def _collect(nb) -> dict[str, dict]:
    found = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if MIME in data:
                result = data[MIME]
                found[result["id"]] = dict(result)
    return found


def grade_worksheet(path: pathlib.Path, cell_timeout: int = 120, startup_timeout: int = 120) -> dict:
    """Execute a copy of one worksheet and return its graded record."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    from .execute import kernel_manager

    path = pathlib.Path(path)
    key = _worksheet_key(path)
    expected = exercises_of(key) if key else []
    failure = None
    with tempfile.TemporaryDirectory(prefix="grading-") as tmp:
        copy = pathlib.Path(tmp) / path.name
        shutil.copyfile(path, copy)
        try:
            nb = nbformat.read(copy, as_version=4)
        except Exception as exc:
            nb, failure = None, f"the notebook could not be read ({type(exc).__name__}: {exc})"
        if nb is not None:
            client = NotebookClient(nb, timeout=cell_timeout, startup_timeout=startup_timeout,
                                    allow_errors=True, km=kernel_manager(),
                                    resources={"metadata": {"path": tmp}})
            try:
                client.execute()
            except CellTimeoutError:
                failure = f"a cell ran longer than {cell_timeout} s and was stopped"
            except DeadKernelError:
                failure = "the kernel died while running the worksheet (out of memory, or a crash)"
            except Exception as exc:  # grading goes on with what was collected
                failure = f"the worksheet could not be run ({type(exc).__name__}: {exc})"
    found = _collect(nb) if nb is not None else {}
    exercises = []
    for ex_id in expected or sorted(found):
        info = REGISTRY.get(ex_id)
        max_points = info.points if info else found.get(ex_id, {}).get("max_points", 1)
        if ex_id in found:
            record = found[ex_id]
            record["max_points"] = max_points
            record["points"] = max_points if record["status"] == "passed" else 0
        else:
            reason = failure or "its check cell produced no result (was it deleted or changed?)"
            record = {"id": ex_id, "status": "error", "points": 0, "max_points": max_points,
                      "message": reason}
        exercises.append(record)
    if key is None:
        failure = failure or f"{path.name} is not a known worksheet (expected a name like 01_....ipynb)"
    return {"path": str(path), "exercises": exercises,
            "score": sum(e["points"] for e in exercises),
            "max_score": sum(e["max_points"] for e in exercises),
            **({"note": failure} if failure else {})}


def _paths(args: list[str]) -> list[pathlib.Path]:
    out = []
    for arg in args:
        p = pathlib.Path(arg)
        if p.is_dir():
            out += sorted(q for q in p.glob("*.ipynb") if not q.name.startswith("."))
        elif p.suffix == ".ipynb" and p.exists():
            out.append(p)
        else:
            raise SystemExit(f"grading: {arg} is neither a notebook nor a folder of notebooks")
    return out


def grade(paths: list[pathlib.Path], cell_timeout: int = 120, echo=print) -> dict:
    sheets = []
    for path in paths:
        start = time.perf_counter()
        sheet = grade_worksheet(path, cell_timeout)
        sheets.append(sheet)
        echo(format_sheet(sheet, time.perf_counter() - start))
    report = {"worksheets": sheets, "score": sum(s["score"] for s in sheets),
              "max_score": sum(s["max_score"] for s in sheets)}
    echo(f"TOTAL  {report['score']}/{report['max_score']}")
    return report


def format_sheet(sheet: dict, seconds: float | None = None) -> str:
    rows = [(e["id"], e["status"], f"{e['points']}/{e['max_points']}", e["message"])
            for e in sheet["exercises"]]
    w = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(("exercise", "status", "points"))]
    lines = [f"{sheet['path']}  score {sheet['score']}/{sheet['max_score']}"
             + (f"  ({seconds:.0f} s)" if seconds is not None else "")]
    if "note" in sheet:
        lines.append(f"  note: {sheet['note']}")
    lines.append(f"  {'exercise'.ljust(w[0])}  {'status'.ljust(w[1])}  {'points'.ljust(w[2])}  message")
    for r in rows:
        message = r[3] if len(r[3]) <= 90 else r[3][:87] + "..."
        lines.append(f"  {r[0].ljust(w[0])}  {r[1].ljust(w[1])}  {r[2].ljust(w[2])}  {message}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.grading", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="worksheet notebooks or folders of them")
    parser.add_argument("--json", dest="json_out", help="also write the report as JSON here")
    parser.add_argument("--cell-timeout", type=int, default=120, help="seconds per cell (default 120)")
    args = parser.parse_args(argv)
    report = grade(_paths(args.paths), args.cell_timeout)
    if args.json_out:
        pathlib.Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
