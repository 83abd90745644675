"""Command line of the grader (see ``course_lib.grading``)."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from . import __doc__ as DOC
from . import find_submissions, grade, shard_of
from .report import dumps, format_sheet, format_statistics, gradebook_csv, merge, write_atomic


def _writer(args):
    def write(report):
        if args.json_out:
            write_atomic(args.json_out, dumps(report))
        if args.csv_out:
            write_atomic(args.csv_out, gradebook_csv(report))
    return write


def _merge(argv) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.grading merge",
                                     description="Combine the JSON reports of shards into one.")
    parser.add_argument("reports", nargs="+")
    parser.add_argument("--json", dest="json_out", required=True)
    parser.add_argument("--csv", dest="csv_out")
    args = parser.parse_args(argv)
    reports = []
    for name in args.reports:
        try:
            reports.append(json.loads(open(name).read()))
        except (OSError, ValueError) as exc:
            print(f"merge: cannot read {name}: {exc}", file=sys.stderr)
            return 1
    merged, notes = merge(reports)
    for note in notes:
        print(f"note: {note}")
    _writer(args)(merged)
    print(format_statistics(merged) + f"TOTAL  {merged['score']}/{merged['max_score']}  "
          f"({len(merged['students'])} students, {len(merged['worksheets'])} sheets)")
    return 0 if merged["graded"] else 1


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["merge"]:
        return _merge(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m course_lib.grading", description=DOC,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="notebooks, folders of notebooks, or a folder of students")
    parser.add_argument("--json", dest="json_out", help="write the report as JSON here")
    parser.add_argument("--csv", dest="csv_out", help="write the student x exercise gradebook here")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="sheets graded at once (default: the number of cores)")
    parser.add_argument("--shard", help="K/N: grade only the students of shard K of N (1 <= K <= N)")
    parser.add_argument("--cell-timeout", type=float, default=120, help="seconds per cell (default 120)")
    parser.add_argument("--sheet-timeout", type=float, default=1200, help="seconds per sheet (default 1200)")
    parser.add_argument("--memory", type=int, default=6144, help="address-space limit per kernel in MiB")
    parser.add_argument("--quiet", action="store_true", help="no per-sheet tables, only progress")
    parser.add_argument("--unsafe", action="store_true",
                        help="run without a sandbox where bubblewrap is unavailable (trusted input only)")
    args = parser.parse_args(argv)
    logging.getLogger("traitlets").setLevel(logging.ERROR)

    submissions = find_submissions(args.paths)
    if args.shard:
        try:
            k, n = (int(v) for v in args.shard.split("/"))
            assert 1 <= k <= n
        except (ValueError, AssertionError):
            parser.error(f"--shard expects K/N with 1 <= K <= N, got {args.shard!r}")
        submissions = [(s, p) for s, p in submissions if shard_of(s, n) == k]
    if not submissions:
        print(f"grading: no notebooks found in {' '.join(args.paths)}"
              + (f" for shard {args.shard}" if args.shard else ""), file=sys.stderr)
        return 2
    if not args.unsafe:
        from .sandbox import bwrap_works
        problem = bwrap_works()
        if problem:
            print(f"grading: REFUSING to run students' code without a sandbox: {problem}.\n"
                  "Install bubblewrap, or pass --unsafe to run it unconfined (only for code you trust).",
                  file=sys.stderr)
            return 2
    else:
        print("grading: WARNING --unsafe: students' code runs without a sandbox", file=sys.stderr)
    students = len({s for s, _ in submissions})
    print(f"grading {len(submissions)} sheet(s) of {students} student(s) with {args.jobs} job(s)", flush=True)
    write = _writer(args)
    report = grade(submissions, jobs=args.jobs, echo=lambda line: print(line, flush=True),
                   on_sheet=write, cell_timeout=args.cell_timeout, sheet_timeout=args.sheet_timeout,
                   unsafe=args.unsafe, memory_mb=args.memory)
    if args.shard:
        report["shard"] = args.shard
    write(report)
    if not args.quiet:
        for sheet in report["worksheets"]:
            print(format_sheet(sheet))
    print(format_statistics(report), end="")
    for student, totals in report["students"].items():
        print(f"{student or '-'}: {totals['score']}/{totals['max_score']}")
    print(f"TOTAL  {report['score']}/{report['max_score']}  ({report['graded']} of "
          f"{len(report['worksheets'])} sheet(s) graded)")
    return 0 if report["graded"] else 1
