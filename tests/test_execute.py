"""``python -m course_lib.execute`` runs a notebook top to bottom in a fresh kernel of this
Python, in the notebook's folder, saves it without timestamps, and names the cell that fails."""
import contextlib
import io
import os
import sys

import nbformat
import pytest

from course_lib.execute import NotebookFailed, execute_notebook, main


def notebook(*sources, markdown_first=True):
    nb = nbformat.v4.new_notebook()
    cells = [nbformat.v4.new_markdown_cell("# a tiny notebook")] if markdown_first else []
    nb.cells = cells + [nbformat.v4.new_code_cell(s) for s in sources]
    return nb


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lecture_folder")
    nb = notebook("import os\nprint(os.path.basename(os.getcwd()))",
                  "import sys\nprint(sys.executable)",
                  "x = 6 * 7\nx")
    nb.cells[1].metadata["execution"] = {"iopub.execute_input": "2020-01-01T00:00:00Z"}
    path = folder / "tiny.ipynb"
    nbformat.write(nb, path)
    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        status = main([str(path)])
    return {"status": status, "report": report.getvalue(), "folder": folder,
            "nb": nbformat.read(path, as_version=4)}


def outputs_text(cell):
    return "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "")
                   for o in cell.outputs)


def test_success_exits_with_status_zero_and_reports_the_wall_time(executed):
    assert executed["status"] == 0
    assert "tiny.ipynb" in executed["report"]
    assert executed["report"].rstrip().endswith(" s")


def test_code_cells_are_numbered_in_order_from_one(executed):
    counts = [c.execution_count for c in executed["nb"].cells if c.cell_type == "code"]
    assert counts == [1, 2, 3]


def test_outputs_are_saved_into_the_notebook(executed):
    assert outputs_text(executed["nb"].cells[3]) == "42"


def test_cells_run_in_the_notebooks_folder(executed):
    assert outputs_text(executed["nb"].cells[1]).strip() == executed["folder"].name


def test_the_kernel_is_this_python(executed):
    reported = outputs_text(executed["nb"].cells[2]).strip()
    assert os.path.realpath(reported) == os.path.realpath(sys.executable)


def test_execution_timestamps_are_not_kept(executed):
    assert all("execution" not in c.metadata for c in executed["nb"].cells)


def test_widget_state_is_not_saved(executed):
    assert "widgets" not in executed["nb"].metadata


def test_an_error_names_the_cell_exits_non_zero_and_leaves_the_file_alone(tmp_path):
    path = tmp_path / "broken.ipynb"
    nbformat.write(notebook("y = 1", "y / 0", "print('never')"), path)
    before = path.read_bytes()
    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        status = main([str(path)])
    assert status == 1
    assert "cell 3" in report.getvalue() and "ZeroDivisionError" in report.getvalue()
    assert path.read_bytes() == before


def test_a_cell_over_the_time_limit_fails_the_notebook(tmp_path):
    path = tmp_path / "slow.ipynb"
    nbformat.write(notebook("import time\ntime.sleep(60)", markdown_first=False), path)
    with pytest.raises(NotebookFailed, match="limit of 2 s"):
        execute_notebook(path, timeout=2)
