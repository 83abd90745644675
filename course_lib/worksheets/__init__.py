"""Worksheets from one source: ``python -m course_lib.worksheets`` writes ``exercises/`` and ``solutions/``.

A source is ``course_lib/worksheets/sources/NN_name.py`` in the percent format: cells start
with ``# %%`` (code) or ``# %% [markdown]`` (Markdown, each line behind ``# ``), optionally
followed by ``tags=[...]`` and ``slide=...``. Solutions sit between ``### BEGIN SOLUTION`` and
``### END SOLUTION``. The exercise keeps everything else and puts a stub in place of each
solution (``# YOUR CODE HERE`` and ``raise NotImplementedError()``, at the solution's
indentation) and is saved without outputs; the solution drops the two marker lines, marks
its check cells ``# NBVAL_CHECK_OUTPUT`` (so nbval keeps them passing) and is executed with
outputs.
"""
from __future__ import annotations

import json
import pathlib
import re

import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCES = pathlib.Path(__file__).resolve().parent / "sources"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
_HEADER = re.compile(r"^# %%(?P<md> \[markdown\])?(?P<opts>.*)$")

__all__ = ["sources", "parse", "exercise_notebook", "solution_notebook", "solution_blocks", "write",
           "check_cells"]


def sources() -> list[pathlib.Path]:
    return sorted(SOURCES.glob("[0-9][0-9]_*.py"))


def parse(text: str) -> list[nbformat.NotebookNode]:
    """Split a percent-format source into notebook cells."""
    cells, kind, opts, lines = [], None, "", []

    def flush():
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        meta = {}
        tags = re.search(r"tags=\[([^\]]*)\]", opts)
        if tags:
            meta["tags"] = [t.strip().strip("\"'") for t in tags.group(1).split(",") if t.strip()]
        slide = re.search(r"slide=(\w+)", opts)
        meta["slideshow"] = {"slide_type": slide.group(1) if slide else "-"}
        if kind == "markdown":
            body = "\n".join(re.sub(r"^# ?", "", l) for l in body.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(body, metadata=meta))
        else:
            cells.append(nbformat.v4.new_code_cell(body, metadata=meta))

    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            flush()
            kind, opts, lines = ("markdown" if m.group("md") else "code"), m.group("opts"), []
        elif kind is not None:
            lines.append(line)
    flush()
    return cells


def solution_blocks(source: str) -> list[list[str]]:
    """The lines of each solution block of a cell's source."""
    blocks, current = [], None
    for line in source.splitlines():
        if line.strip() == BEGIN:
            current = []
        elif line.strip() == END:
            blocks.append(current or [])
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def _stub(source: str) -> tuple[str, bool]:
    out, inside, top_level = [], False, False
    for line in source.splitlines():
        if line.strip() == BEGIN:
            indent = line[: len(line) - len(line.lstrip())]
            out += [f"{indent}# YOUR CODE HERE", f"{indent}raise NotImplementedError()"]
            top_level |= indent == ""
            inside = True
        elif line.strip() == END:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out), top_level


def _notebook(cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}}
    return nb


def _fresh_ids(nb, stem: str):
    # stable cell ids, so regenerating an unchanged source gives identical files; the grader
    # finds the check cells by id and source, and the worksheet by its metadata
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{stem[:2]}-{i:03d}"
    nb.metadata["course"] = {"worksheet": stem}
    return nb


def check_cells(stem: str) -> dict[str, tuple[str, str, str]]:
    """The check cells of a worksheet as generated: cell id -> (exercise id, answer name, source)."""
    cells = {}
    for cell in exercise_notebook(SOURCES / f"{stem}.py").cells:
        m = re.fullmatch(r"checks\.(ex\d\d_\d+)\((\w+)\)", cell.source.strip())
        if cell.cell_type == "code" and m:
            cells[cell["id"]] = (m.group(1), m.group(2), cell.source.strip())
    return cells


def exercise_notebook(path: pathlib.Path) -> nbformat.NotebookNode:
    cells = []
    for cell in parse(path.read_text()):
        if cell.cell_type == "code" and BEGIN in cell.source:
            cell.source, top_level = _stub(cell.source)
            if top_level:
                cell.metadata.setdefault("tags", []).append("raises-exception")
        cells.append(cell)
    return _fresh_ids(_notebook(cells), path.stem)


def solution_notebook(path: pathlib.Path) -> nbformat.NotebookNode:
    cells = []
    for cell in parse(path.read_text()):
        if cell.cell_type == "code":
            cell.source = "\n".join(l for l in cell.source.splitlines()
                                    if l.strip() not in (BEGIN, END))
            if cell.source.startswith("checks.ex"):
                # a solved worksheet must keep passing: nbval compares the check's output
                cell.source = "# NBVAL_CHECK_OUTPUT\n" + cell.source
        cells.append(cell)
    return _fresh_ids(_notebook(cells), path.stem)


def dumps(nb) -> str:
    return nbformat.writes(nb) + "\n"


def write(names: list[str] | None = None, execute_solutions: bool = True,
          root: pathlib.Path = ROOT) -> list[pathlib.Path]:
    """Write the exercise and the (executed) solution of every source, or of ``names``,
    into ``root/exercises`` and ``root/solutions`` (the repository's by default)."""
    from ..execute import execute_notebook

    written = []
    for src in sources():
        if names and src.stem not in names and src.stem[:2] not in names:
            continue
        ex_path, sol_path = root / "exercises" / f"{src.stem}.ipynb", root / "solutions" / f"{src.stem}.ipynb"
        ex_path.parent.mkdir(parents=True, exist_ok=True)
        sol_path.parent.mkdir(parents=True, exist_ok=True)
        ex_path.write_text(dumps(exercise_notebook(src)))
        sol_path.write_text(dumps(solution_notebook(src)))
        if execute_solutions:
            execute_notebook(sol_path)
        written += [ex_path, sol_path]
    return written
