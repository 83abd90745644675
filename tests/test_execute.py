"""``python -m course_lib.execute`` runs a notebook top to bottom in a fresh kernel of this
Python, in the notebook's folder, saves it without timestamps, and names the cell that fails."""
import contextlib
import io
import os
import subprocess
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


@pytest.fixture(scope="module")
def static_view(tmp_path_factory):
    """A notebook with a progress bar, a widget, an animation and an image with alt text,
    executed twice."""
    folder = tmp_path_factory.mktemp("static")
    nb = notebook(
        "from tqdm.auto import tqdm\nfor _ in tqdm(range(5), desc='training'):\n    pass",
        "import ipywidgets\nipywidgets.IntSlider(value=3, description='a')",
        "import matplotlib\nmatplotlib.use('agg')\nimport matplotlib.pyplot as plt\n"
        "from matplotlib.animation import FuncAnimation\nfrom IPython.display import HTML\n"
        "fig, ax = plt.subplots(figsize=(6.4, 2))\nline, = ax.plot([0, 1], [0, 1])\n"
        "anim = FuncAnimation(fig, lambda i: line.set_ydata([0, i]), frames=2)\n"
        "plt.close(fig)\nHTML(anim.to_jshtml())",
        "anim",
        "from IPython.display import Image\nimport base64\n"
        "Image(base64.b64decode('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
        "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=='))",
        "import time\nprint('first', flush=True)\ntime.sleep(0.3)\nprint('second', flush=True)")
    nb.cells[3].metadata["alt"] = "a line that rises frame by frame"
    nb.cells[5].metadata["alt"] = "one white pixel"
    path = folder / "static.ipynb"
    nbformat.write(nb, path)
    # in a process of its own, so that what the kernels print reaches the captured stderr
    run = subprocess.run([sys.executable, "-m", "course_lib.execute", str(path)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    first = path.read_bytes()
    assert main([str(path)]) == 0
    return {"first": first, "second": path.read_bytes(), "nb": nbformat.read(path, as_version=4),
            "stderr": run.stderr}


def test_the_saved_notebook_keeps_the_widget_state(static_view):
    nb = static_view["nb"]
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    view = nb.cells[2].outputs[0]["data"]["application/vnd.jupyter.widget-view+json"]
    assert state[view["model_id"]]["state"]["value"] == 3


def test_a_progress_bar_is_stored_finished(static_view):
    bar = static_view["nb"].cells[1].outputs[0]["data"]["text/plain"]
    assert bar.startswith("training: 100%|██████████| 5/5")
    assert " 0%" not in bar


def test_images_carry_their_cells_alt_text_and_animations_stable_ids(static_view):
    cells = static_view["nb"].cells
    page = cells[3].outputs[0]["data"]["text/html"]
    assert '<img alt="a line that rises frame by frame" id="_anim_img' in page
    assert cells[5].outputs[0]["metadata"]["image/png"]["alt"] == "one white pixel"
    assert "at 0x" not in cells[4].outputs[0]["data"]["text/plain"]


def test_consecutive_prints_are_stored_as_one_output(static_view):
    outputs = static_view["nb"].cells[6].outputs
    assert [(o.output_type, o.name, o.text) for o in outputs] == [("stream", "stdout", "first\nsecond\n")]


def test_re_executing_an_unchanged_notebook_changes_only_timing_lines(static_view):
    first = static_view["first"].decode().splitlines()
    second = static_view["second"].decode().splitlines()
    assert len(first) == len(second)
    changed = [(a, b) for a, b in zip(first, second) if a != b]
    assert all("it/s" in a or "s/it" in a for a, _ in changed), changed


def test_kernels_run_quietly_over_local_sockets(static_view):
    assert "without encryption" not in static_view["stderr"]
    assert "Parent appears to have exited" not in static_view["stderr"]
