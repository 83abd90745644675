"""What a reader of a lecture sees before running it: no document the student does not have,
further reading, finished progress bars, widget state, wide animations, alt text."""
import base64
import pathlib
import re
import struct

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
LECTURES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# the documents the course was written from, which students never receive ("a random seed" is fine)
ABSENT = re.compile(r"\bchapter\b|\bthe slides\b|\bslides'|\bslides of the course\b|\blecture notes\b|"
                    r"\bcheat ?sheet\b|\btechnical reference\b|\bseed(?:'s| chapter| document)|"
                    r"\bseeds/", re.I)
ids = lambda p: p.stem[:2]


def load(path):
    return nbformat.read(path, as_version=4)


@pytest.mark.parametrize("path", LECTURES, ids=ids)
def test_no_reference_to_documents_the_student_does_not_have(path):
    found = [(i, m.group(0)) for i, cell in enumerate(load(path).cells)
             for m in ABSENT.finditer(cell.source)]
    assert not found, f"cells refer to documents students never see: {found}"


@pytest.mark.parametrize("path", LECTURES[1:], ids=ids)
def test_every_lecture_has_further_reading(path):
    assert any(c.cell_type == "markdown" and re.search(r"^#+ (\d+\. )?Further reading", c.source, re.M)
               for c in load(path).cells)


def _texts(nb):
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            yield out.get("text", "") or out.get("data", {}).get("text/plain", "")


@pytest.mark.parametrize("path", LECTURES, ids=ids)
def test_no_stored_progress_bar_at_zero(path):
    stuck = [t for t in _texts(load(path)) if re.search(r"(?<!\d)0%\|", t)]
    assert not stuck, stuck


@pytest.mark.parametrize("path", LECTURES, ids=ids)
def test_widget_outputs_have_their_state_saved(path):
    nb = load(path)
    views = [o["data"][WIDGET_VIEW]["model_id"] for c in nb.cells for o in c.get("outputs", [])
             if WIDGET_VIEW in o.get("data", {})]
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    assert all(v in state for v in views), [v for v in views if v not in state]


def _png_width(b64: str) -> int:
    return struct.unpack(">I", base64.b64decode(b64[:64])[16:20])[0]


@pytest.mark.parametrize("path", LECTURES, ids=ids)
def test_animations_are_at_least_640_px_wide(path):
    for cell in load(path).cells:
        for out in cell.get("outputs", []):
            page = out.get("data", {}).get("text/html", "")
            if "_anim_img" in page:
                frame = re.search(r"data:image/png;base64,([A-Za-z0-9+/=]{64})", page)
                assert frame and _png_width(frame.group(1)) >= 640, cell.source[:80]


@pytest.mark.parametrize("path", LECTURES, ids=ids)
def test_every_image_has_alt_text(path):
    missing = []
    for i, cell in enumerate(load(path).cells):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "image/png" in data and not out.get("metadata", {}).get("image/png", {}).get("alt"):
                missing.append(i)
            if re.search(r"<img(?![^>]*\balt=)", data.get("text/html", "")):
                missing.append(i)
    assert not missing, f"cells without alt text: {sorted(set(missing))}"


@pytest.mark.parametrize("path", LECTURES, ids=ids)
def test_no_stored_output_loads_anything_from_the_network(path):
    """Opening a lecture offline must not ask a CDN for anything (matplotlib's animation player
    links Font Awesome from one unless shown with ``show_animation``)."""
    remote = re.compile(r"<(?:link|script|img|iframe)\b[^>]*\b(?:href|src)\s*=\s*[\"']?https?://", re.I)
    offending = [i for i, cell in enumerate(load(path).cells) for out in cell.get("outputs", [])
                 if remote.search(out.get("data", {}).get("text/html", ""))]
    assert not offending, f"cells whose stored output loads from the network: {offending}"
