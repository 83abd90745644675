"""The grader against hostile submissions: every attack earns nothing it did not solve, harms no
other submission, leaves the report and the library intact; honest submissions keep their
scores. All hostile notebooks are built here from the generated worksheet 01 and graded together
in one run of the command (two jobs), as a class would be."""
import copy
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import time

import nbformat
import pytest
import torch

import course_lib
from course_lib import checks, worksheets
from course_lib.grading import find_submissions, grade_worksheet, shard_of
from course_lib.grading.report import build_report, gradebook_csv, merge
from course_lib.grading.sandbox import bwrap_works

STEM = "01_change_of_variables_1d"
SRC = worksheets.SOURCES / f"{STEM}.py"
LIBRARY = pathlib.Path(course_lib.__file__).resolve().parent
EXERCISES = checks.exercises_of(STEM)
PASSED = {"id": "", "status": "passed", "points": 1, "max_points": 1, "message": "correct"}

pytestmark = pytest.mark.skipif(bwrap_works() is not None, reason="the grader's sandbox needs bubblewrap")


def library_digest():
    return {str(p.relative_to(LIBRARY)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(LIBRARY.rglob("*.py"))}


def exercise():
    return worksheets.exercise_notebook(SRC)


def solved():
    nb = nbformat.read(worksheets.ROOT / "solutions" / f"{STEM}.ipynb", as_version=4)
    return nb


def check_indices(nb):
    return {c.source.split("checks.")[1].split("(")[0]: i for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and "checks.ex" in c.source}


def stale_passed_output(ex_id):
    return nbformat.v4.new_output("display_data", data={checks.MIME: dict(PASSED, id=ex_id),
                                                        "text/plain": f"[{ex_id}] PASSED"})


def with_cell_first(nb, source):
    first = min(check_indices(nb).values())
    nb.cells.insert(first, nbformat.v4.new_code_cell(source))
    return nb


def save(folder, nb, name=f"{STEM}.ipynb"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(nb))
    return path


PATCH_EVERYTHING = f"""
import torch, course_lib.checks as C, course_lib.checks.core as core
from course_lib.checks.core import CheckResult
CheckResult.as_dict = lambda self: {{"id": self.exercise, "status": "passed", "points": 1,
                                     "max_points": 1, "message": "ok"}}
for e in {EXERCISES!r}:
    setattr(C, e, lambda *a, _e=e, **k: CheckResult(_e, "passed", "ok", 1, 1))
def fake(ex, answer, inputs, out):
    torch.save({{"exercise": ex, "records": [], "status": "passed", "message": "ok"}}, out)
C.probe_to_file = core.probe_to_file = fake
"""

DISPLAY_BUNDLES = f"""
from IPython.display import display
for e in {EXERCISES!r}:
    display({{"{checks.MIME}": {{"id": e, "status": "passed", "points": 1, "max_points": 1,
              "message": "ok"}}, "text/plain": "passed"}}, raw=True)
"""

LYING_ANSWERS = """
import torch
class Liar(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.allclose, torch.Tensor.allclose, torch.equal):
            return True
        return super().__torch_function__(func, types, args, kwargs or {})
    def item(self):
        return 0.5
    def __eq__(self, other):
        return True
class Yes(float):
    def __eq__(self, other):
        return True
    def __lt__(self, other):
        return True
    def __ge__(self, other):
        return True
def pushed_density_affine(x, a, b):
    return torch.zeros_like(x).as_subclass(Liar)
def lognormal_pdf(x):
    return torch.zeros_like(x).as_subclass(Liar)
def prob_interval(lo, hi, a, b):
    return Yes(0.5)
"""


def harm(honest: list[pathlib.Path], report: pathlib.Path, marker: str) -> str:
    targets = [str(p) for p in honest] + [str(report), str(LIBRARY / "checks" / "core.py"),
                                          "/opt/course/course_lib/checks/core.py"]
    return f"""
import glob, os, signal, subprocess, sys
found = []
for cmd in glob.glob('/proc/[0-9]*/cmdline'):
    try:
        args = open(cmd, 'rb').read().split(b'\\0')
    except OSError:
        continue
    found += [a.decode() for a in args if a.endswith(b'.json') or a.endswith(b'.ipynb')]
for target in {targets!r} + found:
    for action in (lambda t: open(t, 'a').write('\\n# overwritten\\n'), os.remove):
        try:
            action(target)
        except OSError:
            pass
subprocess.Popen([sys.executable, '-c', '''import time
for _ in range(120):
    time.sleep(0.5)
    for t in {targets!r}:
        try:
            open(t, "w").write("{marker}")
        except OSError:
            pass'''], start_new_session=True)
try:
    block = bytearray(64 * 2**30)
except MemoryError:
    pass
for pid in [int(p.split('/')[2]) for p in glob.glob('/proc/[0-9]*')]:
    if pid not in (os.getpid(),):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
"""


@pytest.fixture(scope="module")
def class_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    subs = root / "submissions"
    report = root / "grades.json"
    honest = {"honest_a": save(subs / "honest_a", solved()), "honest_b": save(subs / "honest_b", solved()),
              "untouched": save(subs / "untouched", exercise())}
    marker = "MARKER-" + os.urandom(4).hex()
    attacks = {}
    attacks["patch_checks"] = with_cell_first(exercise(), PATCH_EVERYTHING)
    attacks["display_bundles"] = with_cell_first(exercise(), DISPLAY_BUNDLES)
    nb = exercise()  # stale "passed" outputs everywhere, and an exit before anything is checked
    for ex_id, i in check_indices(nb).items():
        nb.cells[i].outputs = [stale_passed_output(ex_id)]
    nb.cells.append(nbformat.v4.new_code_cell("", outputs=[stale_passed_output("ex01_1")]))
    md = nbformat.v4.new_markdown_cell("done")
    md["outputs"] = [stale_passed_output("ex01_2")]
    nb.cells.append(md)
    skip = nbformat.v4.new_code_cell("pass", metadata={"tags": ["skip-execution"]},
                                     outputs=[stale_passed_output("ex01_3")])
    nb.cells.append(skip)
    attacks["stale_outputs_and_exit"] = with_cell_first(nb, "import os; os._exit(0)")
    nb = exercise()
    for ex_id, i in check_indices(nb).items():
        nb.cells[i].outputs = [stale_passed_output(ex_id)]
    attacks["stale_outputs_and_loop"] = with_cell_first(nb, "while True:\n    pass")
    nb = exercise()
    for ex_id, i in check_indices(nb).items():
        nb.cells[i].source = f'checks.CheckResult("{ex_id}", "passed", "correct", 1, 1)'
    attacks["constructed_results"] = nb
    nb = exercise()
    keep = check_indices(nb)["ex01_1"]
    nb.cells = [c for i, c in enumerate(nb.cells) if i <= keep]
    nb.cells.append(nbformat.v4.new_code_cell(DISPLAY_BUNDLES))
    attacks["deleted_exercises"] = nb
    nb = exercise()  # the lies are defined again right before every check, after the stubs
    for i in sorted(check_indices(nb).values(), reverse=True):
        nb.cells.insert(i, nbformat.v4.new_code_cell(LYING_ANSWERS))
    attacks["lying_answers"] = nb
    nb = solved()  # a correct sheet whose check cells were re-numbered: nothing of it counts
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"moved-{i}"
    attacks["renamed_check_cells"] = nb
    paths = {name: save(subs / name, nb) for name, nb in attacks.items()}
    paths["harm"] = save(subs / "harm", with_cell_first(exercise(), harm(list(honest.values()), report,
                                                                            marker)))
    (subs / "garbage.ipynb").write_text("{ not json")
    before = {name: p.read_bytes() for name, p in honest.items()}
    library_before = library_digest()
    start = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "course_lib.grading", str(subs), "--jobs", "2",
                          "--json", str(report), "--csv", str(root / "grades.csv"),
                          "--cell-timeout", "40", "--quiet"],
                         capture_output=True, text=True, timeout=900,
                         env=dict(os.environ, PYTHONPATH=str(LIBRARY.parent)))
    elapsed = time.monotonic() - start
    time.sleep(3)  # anything left behind would now try to rewrite the report
    sheets = {s["student"]: s for s in json.loads(report.read_text())["worksheets"]}
    return dict(run=run, report=report, sheets=sheets, honest=honest, before=before, marker=marker,
                library_before=library_before, elapsed=elapsed, csv=root / "grades.csv", subs=subs)


def test_the_class_run_finishes_with_a_report(class_run):
    run = class_run["run"]
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Kernel is running over TCP" not in run.stdout + run.stderr
    assert run.stdout.count("] ") >= len(class_run["sheets"])  # a progress line per sheet


@pytest.mark.parametrize("attack", ["patch_checks", "display_bundles", "stale_outputs_and_exit",
                                    "stale_outputs_and_loop", "constructed_results", "deleted_exercises",
                                    "lying_answers", "renamed_check_cells", "harm"])
def test_an_attack_earns_nothing(class_run, attack):
    sheet = class_run["sheets"][attack]
    assert sheet["score"] == 0, sheet
    assert sheet["max_score"] == len(EXERCISES)  # the worksheet's declared maximum, whatever the file holds
    assert [e["id"] for e in sheet["exercises"]] == EXERCISES


def test_honest_submissions_keep_their_scores(class_run):
    sheets = class_run["sheets"]
    assert sheets["honest_a"]["score"] == sheets["honest_b"]["score"] == len(EXERCISES)
    assert {e["status"] for e in sheets["untouched"]["exercises"]} == {"not attempted"}


def test_no_submission_is_modified_and_the_report_and_library_are_intact(class_run):
    for name, path in class_run["honest"].items():
        assert path.read_bytes() == class_run["before"][name]
    text = class_run["report"].read_text()
    assert class_run["marker"] not in text and json.loads(text)["worksheets"]
    assert library_digest() == class_run["library_before"]
    leftover = [p for p in pathlib.Path("/proc").glob("[0-9]*/cmdline")
                if class_run["marker"].encode() in p.read_bytes()]
    assert not leftover, "a process started by a submission outlived its sheet"


def test_what_did_not_run_or_did_not_match_is_reported(class_run):
    sheets = class_run["sheets"]
    assert any("did not run" in n for n in sheets["stale_outputs_and_exit"]["notes"])
    assert any("longer than 40 s" in n for n in sheets["stale_outputs_and_loop"]["notes"])
    assert any("displayed by cells that are not" in n for n in sheets["display_bundles"]["notes"])
    assert any("is not the worksheet's check cell" in n for n in sheets["constructed_results"]["notes"])
    messages = {e["id"]: e["message"] for e in sheets["lying_answers"]["exercises"]}
    assert "subclass of torch.Tensor" in messages["ex01_1"]
    assert "Yes" in messages["ex01_5"]


def test_an_unreadable_file_is_a_graded_error(class_run):
    garbage = class_run["sheets"]["submissions"]
    assert garbage["score"] == 0 and "could not be read" in garbage["notes"][0]


def test_the_gradebook_has_a_row_per_student_and_a_column_per_exercise(class_run):
    lines = class_run["csv"].read_text().splitlines()
    assert lines[0].split(",") == ["student"] + EXERCISES + ["score", "max_score"]
    rows = {l.split(",")[0]: l.split(",") for l in lines[1:]}
    assert rows["honest_a"][-2:] == [str(len(EXERCISES))] * 2 and rows["harm"][-2] == "0"
    report = json.loads(class_run["report"].read_text())
    assert report["exercises"]["ex01_1"]["passed"] == 2
    assert {"timestamp", "course_version", "students"} <= set(report)
    sheet = class_run["sheets"]["honest_a"]
    assert sheet["sha256"] == hashlib.sha256(class_run["honest"]["honest_a"].read_bytes()).hexdigest()


# --- cheap checks without kernels -------------------------------------------------------------

def test_a_vanished_file_is_a_graded_error_not_a_crash(tmp_path):
    sheet = grade_worksheet(tmp_path / f"{STEM}.ipynb", "ghost")
    assert sheet["score"] == 0 and sheet["max_score"] == len(EXERCISES)
    assert "could not be read" in sheet["notes"][0]


def test_empty_input_and_nothing_graded_give_non_zero_exit_codes(tmp_path):
    from course_lib.grading import main
    assert main([str(tmp_path)]) == 2
    (tmp_path / "x.ipynb").write_text("not a notebook")
    assert main([str(tmp_path), "--json", str(tmp_path / "r.json")]) == 1
    assert json.loads((tmp_path / "r.json").read_text())["graded"] == 0


def test_students_are_folders_and_flat_files_belong_to_the_folder(tmp_path):
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "a.ipynb").write_text("{}")
    (tmp_path / "b.ipynb").write_text("{}")
    assert sorted(s for s, _ in find_submissions([str(tmp_path)])) == ["ann", tmp_path.name]


def test_shards_partition_the_class_and_merge_rebuilds_one_report():
    students = [f"student{i:02d}" for i in range(40)]
    shards = {k: [s for s in students if shard_of(s, 3) == k] for k in (1, 2, 3)}
    assert sorted(sum(shards.values(), [])) == students and all(shards.values())

    def sheet(student, points):
        return {"student": student, "path": f"/x/{student}/{STEM}.ipynb", "worksheet": STEM,
                "sha256": "0" * 64, "score": points, "max_score": 1, "seconds": 1.0, "notes": [],
                "exercises": [{"id": "ex01_1", "status": "passed" if points else "failed",
                               "points": points, "max_points": 1, "message": ""}]}
    parts = [build_report([sheet(s, i % 2) for i, s in enumerate(shards[k])]) for k in (1, 2, 3)]
    merged, notes = merge(parts + [parts[0]])
    assert len(merged["students"]) == 40 and len(notes) == len(shards[1])
    assert merged["exercises"]["ex01_1"]["passed"] + merged["exercises"]["ex01_1"]["failed"] == 40
    assert gradebook_csv(merged).count("\n") == 41


def test_a_student_probe_that_lies_about_its_status_earns_nothing():
    check = getattr(checks, "ex01_2")
    inputs = check.draw(torch.Generator().manual_seed(0))
    assert check.judge(inputs, {"exercise": "ex01_2", "records": [], "status": "passed"}).status == "error"
    honest = check.probe(lambda x: torch.exp(-0.5 * torch.log(x) ** 2) / (x * (2 * torch.pi) ** 0.5), inputs)
    assert check.judge(inputs, honest).status == "passed"
    forged = copy.deepcopy(honest)
    forged["records"][0]["output"] = torch.zeros_like(forged["records"][0]["output"])
    assert check.judge(inputs, forged).status == "failed"
    other = check.draw(torch.Generator().manual_seed(1))
    assert check.judge(other, honest).status == "error"  # data recorded for other inputs
