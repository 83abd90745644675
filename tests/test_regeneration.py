"""Regenerating an unchanged lecture or worksheet reproduces the committed file.

Re-executing a lecture with ``python -m course_lib.execute`` and regenerating a worksheet with
``course_lib.worksheets.write`` must leave the file byte for byte as committed, except for lines
that report timings (a progress bar's rate and elapsed time), so that an instructor who changes one
cell sees a diff of that cell. The lectures here are copied to a folder of their own (same file
names, so the same widget ids) and executed there; the committed files are never touched.
"""
from __future__ import annotations

import pathlib
import re
import shutil

import pytest

from course_lib import worksheets
from course_lib.execute import execute_notebook

ROOT = pathlib.Path(__file__).resolve().parents[1]
# a progress bar's elapsed time and rate, as tqdm prints them: "[00:06<00:00, 29.64it/s", in
# plain text or, in a widget's saved state, HTML-escaped
TIMING = re.compile(r"\[\d\d:\d\d(<|&lt;)\d\d:\d\d,\s+[\d.]+(it/s|s/it)")


def timing_free(text: str) -> list[str]:
    """The lines of a file with every timing blanked, so only timings may differ."""
    return [TIMING.sub("[timing]", line) for line in text.splitlines()]


def assert_reproduced(committed: pathlib.Path, regenerated: pathlib.Path) -> None:
    old, new = committed.read_text(), regenerated.read_text()
    if old == new:
        return
    old_lines, new_lines = timing_free(old), timing_free(new)
    changed = [(i + 1, a, b) for i, (a, b) in enumerate(zip(old_lines, new_lines)) if a != b]
    assert len(old_lines) == len(new_lines) and not changed, (
        f"{committed.relative_to(ROOT)} changed on regeneration beyond timing lines "
        f"({len(old_lines)} -> {len(new_lines)} lines); first differences: {changed[:3]}")


def test_timing_lines_are_recognised_and_nothing_else():
    bar = '"training: 100%|██████████| 300/300 [00:06<00:00, 29.64it/s, loss=2.756]"'
    slow = '"value": "\u20073/3\u2007[01:02&lt;00:00,\u200720.61s/it]"'  # a widget's saved state'
    assert timing_free(bar) == timing_free(bar.replace("00:06", "00:02").replace("29.64", "97.03"))
    assert timing_free(bar) != timing_free(bar.replace("2.756", "2.757"))
    assert timing_free(bar) != timing_free(bar.replace("300/300", "299/300"))
    assert timing_free(slow) == timing_free(slow.replace("01:02", "00:58").replace("20.61", "19.3"))
    assert timing_free(slow) != timing_free(slow.replace("3/3", "2/3"))


@pytest.mark.parametrize("name", ["00_start_here", "01_change_of_variables_1d"])
def test_re_executing_an_unchanged_lecture_reproduces_it(name, tmp_path, capfd):
    committed = ROOT / "notebooks" / f"{name}.ipynb"
    copy = tmp_path / "notebooks" / committed.name
    copy.parent.mkdir()
    shutil.copy(committed, copy)
    execute_notebook(copy)
    printed = capfd.readouterr()
    assert "without encryption" not in printed.out + printed.err
    assert_reproduced(committed, copy)


@pytest.mark.parametrize("name", ["01", "09"])
def test_regenerating_an_unchanged_worksheet_reproduces_it(name, tmp_path, capfd):
    written = worksheets.write([name], root=tmp_path)
    printed = capfd.readouterr()  # the kernel's own stderr included: it is a child process
    assert "without encryption" not in printed.out + printed.err
    assert [p.parent.name for p in written] == ["exercises", "solutions"]
    for path in written:
        assert_reproduced(ROOT / path.parent.name / path.name, path)
