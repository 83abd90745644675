"""What every lecture notebook promises besides its content: executed in order with outputs,
seeded, slides, checked numbers, a widget, no errors, and a size that loads quickly."""
import pathlib

import nbformat
import pytest
from nbconvert import SlidesExporter

ROOT = pathlib.Path(__file__).resolve().parents[1]
LECTURES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXECUTED = LECTURES + sorted((ROOT / "solutions").glob("*.ipynb"))
WIDGET = "application/vnd.jupyter.widget-view+json"


def load(path):
    return nbformat.read(path, as_version=4)


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]


@pytest.mark.parametrize("path", EXECUTED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_executed_top_to_bottom_without_errors(path):
    nb = load(path)
    counts = [c.execution_count for c in code_cells(nb)]
    assert counts == list(range(1, len(counts) + 1)), f"execution counts {counts}"
    errors = [o for c in code_cells(nb) for o in c.outputs if o.output_type == "error"
              and "raises-exception" not in c.metadata.get("tags", [])]
    assert not errors


@pytest.mark.parametrize("path", LECTURES, ids=lambda p: p.name)
def test_first_code_cell_seeds_everything(path):
    assert "notebook_setup(" in code_cells(load(path))[0].source


@pytest.mark.parametrize("path", LECTURES, ids=lambda p: p.name)
def test_every_cell_has_slideshow_metadata(path):
    nb = load(path)
    missing = [i for i, c in enumerate(nb.cells) if "slide_type" not in c.metadata.get("slideshow", {})]
    assert not missing, f"cells without slideshow metadata: {missing}"


@pytest.mark.parametrize("path", LECTURES, ids=lambda p: p.name)
def test_lecture_converts_to_a_slide_deck(path):
    body, _ = SlidesExporter().from_notebook_node(load(path))
    assert body.count("<section") > 3


@pytest.mark.parametrize("path", LECTURES, ids=lambda p: p.name)
def test_lecture_checks_numbers_with_nbval(path):
    checked = [c for c in code_cells(load(path)) if c.source.startswith("# NBVAL_CHECK_OUTPUT")]
    assert checked and all(c.outputs for c in checked)


@pytest.mark.parametrize("path", LECTURES, ids=lambda p: p.name)
def test_lecture_has_a_widget(path):
    nb = load(path)
    assert any(WIDGET in o.get("data", {}) for c in code_cells(nb) for o in c.outputs)


@pytest.mark.parametrize("path", EXECUTED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebook_stays_small_enough_to_open_quickly(path):
    assert path.stat().st_size < 5_000_000
