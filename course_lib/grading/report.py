"""The class report: per-sheet table, student x exercise gradebook (CSV), per-exercise
statistics and JSON (timestamp, course version, sha256 of every submission), and the merge of
shards' JSON into one report."""
from __future__ import annotations

import csv
import datetime
import io
import json
import os
import pathlib
import tempfile

STATUSES = ("passed", "failed", "not attempted", "error")


def _exercise_order() -> list[str]:
    from ..checks import REGISTRY
    return sorted(REGISTRY, key=lambda e: (REGISTRY[e].worksheet, int(e.split("_")[1])))


def build_report(sheets: list[dict], shard: str | None = None) -> dict:
    import course_lib
    sheets = sorted(sheets, key=lambda s: (s["student"], s.get("worksheet") or "", s["path"]))
    students: dict[str, dict] = {}
    stats: dict[str, dict] = {}
    for sheet in sheets:
        st = students.setdefault(sheet["student"], {"score": 0, "max_score": 0, "worksheets": 0})
        st["score"] += sheet["score"]
        st["max_score"] += sheet["max_score"]
        st["worksheets"] += 1
        for e in sheet["exercises"]:
            row = stats.setdefault(e["id"], {s: 0 for s in STATUSES} | {"points": 0, "max_points": 0})
            row[e["status"]] = row.get(e["status"], 0) + 1
            row["points"] += e["points"]
            row["max_points"] += e["max_points"]
    order = {e: i for i, e in enumerate(_exercise_order())}
    return {"timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "course_version": course_lib.__version__, **({"shard": shard} if shard else {}),
            "worksheets": sheets, "students": students,
            "exercises": dict(sorted(stats.items(), key=lambda kv: order.get(kv[0], 10**6))),
            "score": sum(s["score"] for s in sheets), "max_score": sum(s["max_score"] for s in sheets),
            "graded": sum(1 for s in sheets if s["sha256"] is not None and s["worksheet"])}


def gradebook_csv(report: dict) -> str:
    """One row per student, one column per exercise seen in the class (points), then totals."""
    seen = {e["id"] for s in report["worksheets"] for e in s["exercises"]}
    columns = [e for e in _exercise_order() if e in seen]
    cells: dict[str, dict] = {}
    for sheet in report["worksheets"]:
        row = cells.setdefault(sheet["student"], {})
        for e in sheet["exercises"]:
            row[e["id"]] = e["points"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student"] + columns + ["score", "max_score"])
    for student, totals in report["students"].items():
        writer.writerow([student] + [cells[student].get(c, "") for c in columns]
                        + [totals["score"], totals["max_score"]])
    return out.getvalue()


def format_sheet(sheet: dict) -> str:
    rows = [(e["id"], e["status"], f"{e['points']}/{e['max_points']}", e["message"])
            for e in sheet["exercises"]]
    w = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(("exercise", "status", "points"))]
    who = f"{sheet['student']}: " if sheet["student"] else ""
    lines = [f"{who}{sheet['path']}  score {sheet['score']}/{sheet['max_score']}  ({sheet['seconds']:.0f} s)"]
    lines += [f"  note: {n}" for n in sheet["notes"]]
    lines.append(f"  {'exercise'.ljust(w[0])}  {'status'.ljust(w[1])}  {'points'.ljust(w[2])}  message")
    for r in rows:
        message = " ".join(r[3].split())
        message = message if len(message) <= 90 else message[:87] + "..."
        lines.append(f"  {r[0].ljust(w[0])}  {r[1].ljust(w[1])}  {r[2].ljust(w[2])}  {message}")
    return "\n".join(lines) + "\n"


def format_statistics(report: dict) -> str:
    lines = ["exercise   passed  failed  not attempted  error"]
    for ex_id, row in report["exercises"].items():
        lines.append(f"{ex_id:<9}  {row['passed']:>6}  {row['failed']:>6}  {row['not attempted']:>13}  "
                     f"{row['error']:>5}")
    return "\n".join(lines) + "\n"


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write next to ``path``, then rename: a reader sees the old file or the new one."""
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def merge(reports: list[dict]) -> tuple[dict, list[str]]:
    """One report from shards' reports; a sheet graded twice (same student and file) is kept once."""
    sheets, keys, notes = [], set(), []
    for report in reports:
        for sheet in report.get("worksheets", []):
            key = (sheet["student"], pathlib.Path(sheet["path"]).name)
            if key in keys:
                notes.append(f"{sheet['student']}/{key[1]} appears in more than one shard; kept once")
                continue
            keys.add(key)
            sheets.append(sheet)
    merged = build_report(sheets)
    merged["merged_from"] = [{"timestamp": r.get("timestamp"), "shard": r.get("shard")} for r in reports]
    return merged, notes


def dumps(report: dict) -> str:
    return json.dumps(report, indent=2) + "\n"
