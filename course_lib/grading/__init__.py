"""Grade a class: ``python -m course_lib.grading SUBMISSIONS... [--json OUT] [--csv OUT] [--jobs N]
[--shard K/N]``, and ``python -m course_lib.grading merge A.json B.json ... --json OUT [--csv OUT]``.

Input: notebooks, or folders. A folder's subfolders are students (the subfolder's name is the
student) and the notebooks directly inside a folder belong to a student named after it.

For each submission the grader:

1. reads it (a vanished or unreadable file is a graded error) and identifies the worksheet by
   the metadata the generator wrote (the file name is the fallback; a disagreement is noted);
2. strips every output and runs its code cells in a fresh kernel inside a sandbox (see
   ``sandbox``) with a time limit per cell;
3. for each of the worksheet's own check cells (matched by cell id and source to the
   generated exercise) draws fresh inputs in the grader's process, has the kernel probe the
   answer on them, loads the plain data back and judges it in the grader's process with the
   pristine ``course_lib``. Nothing the notebook displays counts; a check cell that did not run
   in this run counts as not run; anything else that looks like a result is ignored and noted;
4. scores against the worksheet's declared exercises and points.

Sheets are graded in parallel; the report (JSON, CSV) is rewritten atomically after each
sheet. Exit code: 0 when something was graded, 1 when nothing could be, 2 for empty input
or a missing sandbox.
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
import secrets
import shutil
import tempfile
import time

__all__ = ["grade_worksheet", "grade", "main", "find_submissions"]

MAX_DATA_BYTES = 256 * 2**20
MAX_NOTEBOOK_BYTES = 64 * 2**20


def _known_worksheets() -> list[str]:
    from .. import worksheets
    return [p.stem for p in worksheets.sources()]


def identify(nb: dict | None, path: pathlib.Path) -> tuple[str | None, str | None]:
    """(worksheet stem, note): by the generator's metadata, else by the file name."""
    known = _known_worksheets()
    meta = None
    if isinstance(nb, dict):
        course = nb.get("metadata", {}).get("course")
        meta = course.get("worksheet") if isinstance(course, dict) else None
    by_name = next((s for s in known if path.stem == s), None) or \
        next((s for s in known if path.stem[:3] == s[:3]), None)
    if meta in known:
        if by_name and by_name != meta:
            return meta, (f"the file is named like worksheet {by_name} but its metadata says {meta}; "
                          f"graded as {meta}")
        return meta, None
    if by_name:
        note = None if meta is None else f"unknown worksheet id {meta!r} in the metadata; graded as {by_name} by name"
        return by_name, note or "no worksheet id in the metadata; identified by its file name"
    return None, None


def _blank(stem: str | None) -> list[dict]:
    from ..checks import REGISTRY, exercises_of
    if stem is None:
        return []
    return [{"id": e, "status": "error", "points": 0, "max_points": REGISTRY[e].points,
             "message": "its check cell did not run"} for e in exercises_of(stem)]


def _sheet(path, student, stem, sha, exercises, notes, seconds=0.0) -> dict:
    return {"student": student, "path": str(path), "worksheet": stem, "sha256": sha,
            "exercises": exercises, "score": sum(e["points"] for e in exercises),
            "max_score": sum(e["max_points"] for e in exercises), "seconds": round(seconds, 1),
            "notes": notes}


def _normalise(source) -> str:
    if isinstance(source, list):
        source = "".join(source)
    if not isinstance(source, str):
        return ""
    return "\n".join(l for l in source.strip().splitlines() if l.strip() != "# NBVAL_CHECK_OUTPUT").strip()


def grade_worksheet(path, student: str = "", cell_timeout: float = 120, sheet_timeout: float = 1200,
                    unsafe: bool = False, memory_mb: int = 6144) -> dict:
    """Grade one submission in its own sandbox; never raises because of the submission."""
    import torch

    from .. import checks, worksheets
    from ..checks import REGISTRY, plain
    from .sandbox import SandboxKernel

    start = time.monotonic()
    path = pathlib.Path(path)
    notes: list[str] = []
    try:
        if path.stat().st_size > MAX_NOTEBOOK_BYTES:
            raise ValueError(f"larger than {MAX_NOTEBOOK_BYTES // 2**20} MiB")
        raw = path.read_bytes()
        nb = json.loads(raw.decode("utf-8"))
        if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
            raise ValueError("not a notebook")
    except Exception as exc:
        stem, _ = identify(None, path)
        why = f"the file could not be read ({type(exc).__name__}: {str(exc)[:200]})"
        ex = [dict(e, message=why) for e in _blank(stem)]
        return _sheet(path, student, stem, None, ex, [why], time.monotonic() - start)
    sha = hashlib.sha256(raw).hexdigest()
    stem, note = identify(nb, path)
    if note:
        notes.append(note)
    if stem is None:
        notes.append(f"{path.name} is not a known worksheet (no worksheet id in its metadata, "
                     "and its name does not start like 01_...)")
        return _sheet(path, student, None, sha, [], notes, time.monotonic() - start)

    expected = worksheets.check_cells(stem)                 # cell id -> (exercise, answer, source)
    results = {e["id"]: e for e in _blank(stem)}
    plan, seen = [], set()
    for index, cell in enumerate(nb["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = _normalise(cell.get("source", ""))
        spec = expected.get(cell.get("id"))
        if spec and source == spec[2] and spec[0] not in seen:
            seen.add(spec[0])
            plan.append((index, source, spec))
            continue
        if spec and source == spec[2]:
            notes.append(f"cell {index + 1} repeats the check cell of {spec[0]}; only the first counts")
        elif spec:
            notes.append(f"cell {index + 1} has the id of the check cell of {spec[0]} but a changed "
                         "source: it is not the worksheet's check cell and its result does not count")
        elif re.search(r"checks\.ex\d\d_\d+", source):
            notes.append(f"cell {index + 1} calls a check but is not the worksheet's check cell "
                         "(changed id or source); its result does not count")
        plan.append((index, source, None))
    for ex_id in results:
        if ex_id not in seen:
            results[ex_id]["message"] = "the worksheet's check cell for this exercise is missing or changed"

    scratch = pathlib.Path(tempfile.mkdtemp(prefix="grading-"))
    io_dir = scratch / "io"
    io_dir.mkdir()
    stripped = dict(nb, cells=[dict(c, outputs=[], execution_count=None) if isinstance(c, dict)
                               and c.get("cell_type") == "code" else c for c in nb["cells"]])
    (scratch / path.name).write_text(json.dumps(stripped))
    kernel = SandboxKernel(scratch, memory_mb=memory_mb, cpu_seconds=int(sheet_timeout) + 60,
                           sandboxed=not unsafe)
    stopped = None
    foreign_displays = 0
    try:
        try:
            kernel.start()
        except Exception as exc:
            stopped = f"the kernel did not start ({type(exc).__name__})"
        for index, source, spec in plan:
            if stopped:
                break
            left = sheet_timeout - (time.monotonic() - start)
            if left <= 0:
                stopped = f"the worksheet ran longer than {sheet_timeout:.0f} s and was stopped"
                break
            if spec is None:
                outcome = kernel.run(source, min(cell_timeout, left))
                foreign_displays += outcome["displays"].count(checks.MIME)
            else:
                ex_id, answer, _ = spec
                nonce = secrets.token_hex(8)
                inputs = _check_function(ex_id).draw(torch.Generator().manual_seed(secrets.randbits(62)))
                in_path, out_path = io_dir / f"in-{nonce}.json", io_dir / f"out-{nonce}.pt"
                in_path.write_text(json.dumps(inputs))
                code = (f"__import__('course_lib.checks', fromlist=['probe_to_file']).probe_to_file("
                        f"{ex_id!r}, {answer}, {str(in_path)!r}, {str(out_path)!r})")
                outcome = kernel.run(code, min(cell_timeout, left))
                results[ex_id] = _judge(ex_id, inputs, out_path, outcome, plain)
            if outcome["status"] == "timeout":
                stopped = (f"cell {index + 1} ran longer than {min(cell_timeout, left):.0f} s and was "
                           "stopped; the cells after it did not run")
            elif outcome["status"] == "died":
                stopped = (f"the kernel died in cell {index + 1} (an exit, a crash, or out of memory); "
                           "the cells after it did not run")
    finally:
        kernel.close()
        leftovers = [p.name for p in io_dir.glob("out-*")] if io_dir.is_dir() else []
        shutil.rmtree(scratch, ignore_errors=True)
    if stopped:
        notes.append(stopped)
        for e in results.values():
            if e["status"] == "error" and e["message"] == "its check cell did not run":
                e["message"] = f"its check cell did not run: {stopped}"
    if foreign_displays:
        notes.append(f"ignored {foreign_displays} check result(s) displayed by cells that are not the "
                     "worksheet's check cells")
    if leftovers:
        notes.append(f"ignored {len(leftovers)} result file(s) that no check cell of this run wrote")
    return _sheet(path, student, stem, sha, list(results.values()), notes, time.monotonic() - start)


def _check_function(ex_id: str):
    from ..checks.core import REGISTRY_FUNCTIONS
    return REGISTRY_FUNCTIONS[ex_id]


def _judge(ex_id: str, inputs: dict, out_path: pathlib.Path, outcome: dict, plain) -> dict:
    """The grader's verdict on the data one check cell left, judged in this process."""
    import torch

    from ..checks import REGISTRY
    points = REGISTRY[ex_id].points
    blank = {"id": ex_id, "status": "error", "points": 0, "max_points": points}
    try:
        if not out_path.is_file():
            why = outcome.get("error") or outcome["status"]
            return dict(blank, message=f"its check cell did not finish ({why})")
        if out_path.stat().st_size > MAX_DATA_BYTES:
            return dict(blank, message="the answer's data is larger than the grader accepts")
        data = torch.load(out_path, weights_only=True, map_location="cpu")
        out_path.unlink()
        plain.validate(data)
        if not isinstance(data, dict) or data.get("exercise") != ex_id or \
                not isinstance(data.get("records", []), list):
            return dict(blank, message="its check cell recorded data of another shape")
        verdict = _check_function(ex_id).judge(inputs, data)
    except Exception as exc:  # the data is unusable: an error, never a pass
        return dict(blank, message=f"the recorded data could not be judged ({type(exc).__name__}: "
                                   f"{str(exc)[:200]})")
    return verdict.as_dict()


# --- a class ---------------------------------------------------------------------------------

def find_submissions(paths: list[str]) -> list[tuple[str, pathlib.Path]]:
    """(student, notebook) pairs: a folder's subfolders are students; its own notebooks belong
    to a student named after the folder; a notebook given directly, after its folder."""
    found = []
    for arg in paths:
        p = pathlib.Path(arg)
        if p.is_file() or (p.suffix == ".ipynb" and not p.is_dir()):
            found.append((p.resolve().parent.name, p))
        elif p.is_dir():
            for q in sorted(p.iterdir()):
                if q.name.startswith("."):
                    continue
                if q.is_dir():
                    found += [(q.name, n) for n in sorted(q.glob("*.ipynb")) if not n.name.startswith(".")]
                elif q.suffix == ".ipynb":
                    found.append((p.resolve().name, q))
    return found


def shard_of(student: str, shards: int) -> int:
    """The shard (1..N) a student belongs to: stable, whatever else is in the class."""
    return int(hashlib.sha256(student.encode()).hexdigest(), 16) % shards + 1


def _grade_task(args):
    student, path, options = args
    try:
        return grade_worksheet(path, student, **options)
    except BaseException as exc:  # a grader bug costs one sheet, never the class
        return _sheet(path, student, None, None, [], [f"the grader failed on this sheet "
                                                      f"({type(exc).__name__}: {exc})"])


def grade(submissions: list[tuple[str, pathlib.Path]], jobs: int = 1, echo=print,
          on_sheet=None, **options) -> dict:
    """Grade every (student, path); ``on_sheet(report)`` after each finished sheet."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    import multiprocessing

    from .report import build_report
    sheets: list[dict] = []
    tasks = [(s, p, options) for s, p in submissions]
    total = len(tasks)

    def finished(sheet):
        sheets.append(sheet)
        echo(f"[{len(sheets)}/{total}] {sheet['student'] or '-'}  {pathlib.Path(sheet['path']).name}  "
             f"{sheet['score']}/{sheet['max_score']}  ({sheet['seconds']:.0f} s)"
             + (f"  note: {sheet['notes'][0]}" if sheet["notes"] else ""))
        if on_sheet:
            on_sheet(build_report(sheets))

    if jobs <= 1 or total <= 1:
        for task in tasks:
            finished(_grade_task(task))
    else:
        with ProcessPoolExecutor(max_workers=min(jobs, total),
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_grade_task, t): t for t in tasks}
            for future in as_completed(futures):
                try:
                    finished(future.result())
                except BaseException as exc:
                    student, path, _ = futures[future]
                    finished(_sheet(path, student, None, None, [], [f"the grader failed ({exc})"]))
    return build_report(sheets)


def main(argv=None) -> int:
    from .cli import main as cli_main
    return cli_main(argv)
