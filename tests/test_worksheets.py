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


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    out = tmp_path_factory.mktemp("grades")
    before = {f: digest(ROOT / f) for f in ("exercises", "solutions")}
    reports = {}
    for folder in ("exercises", "solutions"):
        assert grading.main([str(ROOT / folder), "--json", str(out / f"{folder}.json")]) == 0
        reports[folder] = json.loads((out / f"{folder}.json").read_text())
    after = {f: digest(ROOT / f) for f in ("exercises", "solutions")}
    return reports, before, after


def test_grader_scores_every_untouched_exercise_not_attempted(graded):
    reports, _, _ = graded
    statuses = {e["id"]: e["status"] for s in reports["exercises"]["worksheets"] for e in s["exercises"]}
    assert statuses and set(statuses.values()) == {"not attempted"}
    assert reports["exercises"]["score"] == 0


def test_grader_scores_every_solution_passed(graded):
    reports, _, _ = graded
    statuses = {e["id"]: e["status"] for s in reports["solutions"]["worksheets"] for e in s["exercises"]}
    assert set(statuses) == set(checks.REGISTRY)
    assert set(statuses.values()) == {"passed"}
    assert reports["solutions"]["score"] == reports["solutions"]["max_score"] > 0


def test_grader_leaves_every_file_byte_for_byte_unchanged(graded):
    _, before, after = graded
    assert before == after


def test_grader_json_has_the_documented_shape(graded):
    reports, _, _ = graded
    sheet = reports["solutions"]["worksheets"][0]
    assert set(reports["solutions"]) == {"worksheets", "score", "max_score"}
    assert {"path", "exercises", "score", "max_score"} <= set(sheet)
    assert set(sheet["exercises"][0]) == {"id", "status", "points", "max_points", "message"}


def broken_copy(tmp_path, source_line):
    src = SOURCES[0]
    nb = worksheets.solution_notebook(src)
    first_check = next(i for i, c in enumerate(nb.cells) if "checks.ex" in c.source)
    nb.cells.insert(first_check, nbformat.v4.new_code_cell(source_line))
    path = tmp_path / f"{src.stem}.ipynb"
    path.write_text(worksheets.dumps(nb))
    return path


def test_grader_survives_a_worksheet_that_kills_its_kernel(tmp_path):
    sheet = grading.grade_worksheet(broken_copy(tmp_path, "import os; os._exit(1)"))
    assert {e["status"] for e in sheet["exercises"]} == {"error"}
    assert "kernel died" in sheet["exercises"][0]["message"]


def test_grader_stops_a_worksheet_that_loops(tmp_path):
    sheet = grading.grade_worksheet(broken_copy(tmp_path, "while True:\n    pass"), cell_timeout=5)
    assert {e["status"] for e in sheet["exercises"]} == {"error"}
    assert "longer than 5 s" in sheet["exercises"][0]["message"]
