"""Worksheets come from one source each: the committed exercises and solutions are exactly what
the generator writes, no solution leaks into an exercise, and the grader scores them without
touching them."""
import hashlib
import json
import pathlib

import nbformat
import pytest

from course_lib import checks, grading, worksheets

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCES = worksheets.sources()


def committed(folder, src):
    return ROOT / folder / f"{src.stem}.ipynb"


def test_exercises_and_solutions_match_the_sources_one_to_one():
    names = {s.stem for s in SOURCES}
    assert {p.stem for p in (ROOT / "exercises").glob("*.ipynb")} == names
    assert {p.stem for p in (ROOT / "solutions").glob("*.ipynb")} == names


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_committed_exercise_is_exactly_what_the_generator_writes(src):
    assert committed("exercises", src).read_text() == worksheets.dumps(worksheets.exercise_notebook(src))


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_committed_solution_has_exactly_the_generated_cells(src):
    # outputs come from executing it (and nbval checks them); sources and metadata must match
    got = nbformat.read(committed("solutions", src), as_version=4)
    want = worksheets.solution_notebook(src)
    strip = lambda nb: [(c.cell_type, c.source, c.metadata) for c in nb.cells]
    assert strip(got) == strip(want)


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_no_solution_line_appears_in_the_exercise(src):
    exercise = worksheets.dumps(worksheets.exercise_notebook(src))
    code_lines = {l.strip() for c in nbformat.reads(exercise, as_version=4).cells
                  if c.cell_type == "code" for l in c.source.splitlines()}
    solution_lines = {l.strip() for c in worksheets.parse(src.read_text()) if c.cell_type == "code"
                      for block in worksheets.solution_blocks(c.source) for l in block}
    leaked = sorted(l for l in solution_lines & code_lines if l and not l.startswith("#"))
    assert not leaked, f"solution lines visible in the exercise: {leaked}"


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_exercise_stubs_raise_not_implemented(src):
    nb = worksheets.exercise_notebook(src)
    stubs = [c for c in nb.cells if c.cell_type == "code" and "raise NotImplementedError()" in c.source]
    assert len(stubs) == len(checks.exercises_of(src.stem))
    assert all("# YOUR CODE HERE" in c.source for c in stubs)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.ipynb"))}


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_generated_worksheets_carry_their_id_and_stable_check_cells(src):
    nb = worksheets.exercise_notebook(src)
    assert nb.metadata["course"]["worksheet"] == src.stem
    cells = worksheets.check_cells(src.stem)
    assert [ex for ex, _, _ in cells.values()] == checks.exercises_of(src.stem)
    assert cells == worksheets.check_cells(src.stem)  # ids and sources do not move between runs


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The committed exercises and solutions graded as a class of two, in one command."""
    out = tmp_path_factory.mktemp("grades")
    before = {f: digest(ROOT / f) for f in ("exercises", "solutions")}
    code = grading.main([str(ROOT / "exercises"), str(ROOT / "solutions"), "--jobs", "2", "--quiet",
                         "--json", str(out / "grades.json")])
    report = json.loads((out / "grades.json").read_text())
    after = {f: digest(ROOT / f) for f in ("exercises", "solutions")}
    return code, report, before, after


def statuses(report, student):
    return {e["id"]: e["status"] for s in report["worksheets"] if s["student"] == student
            for e in s["exercises"]}


def test_grader_scores_every_untouched_exercise_not_attempted(graded):
    code, report, _, _ = graded
    assert code == 0
    got = statuses(report, "exercises")
    assert set(got) == set(checks.REGISTRY) and set(got.values()) == {"not attempted"}
    assert report["students"]["exercises"]["score"] == 0


def test_grader_scores_every_solution_passed(graded):
    _, report, _, _ = graded
    got = statuses(report, "solutions")
    assert set(got) == set(checks.REGISTRY)
    assert set(got.values()) == {"passed"}, {k: v for k, v in got.items() if v != "passed"}
    totals = report["students"]["solutions"]
    assert totals["score"] == totals["max_score"] == sum(i.points for i in checks.REGISTRY.values())


def test_grader_leaves_every_file_byte_for_byte_unchanged(graded):
    _, _, before, after = graded
    assert before == after


def test_grader_json_has_the_documented_shape(graded):
    _, report, _, _ = graded
    assert {"timestamp", "course_version", "worksheets", "students", "exercises", "score",
            "max_score", "graded"} <= set(report)
    sheet = report["worksheets"][0]
    assert {"student", "path", "worksheet", "sha256", "exercises", "score", "max_score", "notes"} <= set(sheet)
    assert set(sheet["exercises"][0]) == {"id", "status", "points", "max_points", "message"}
    assert set(report["exercises"]["ex01_1"]) >= {"passed", "failed", "not attempted", "error"}
