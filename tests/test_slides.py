"""Offline slide decks and static pages (``python -m course_lib.slides``).

The fast tests build every lecture both ways and read the HTML: nothing the browser would fetch
points at the network, every local asset it points at exists, no linked style sheet imports a web
font, and nbconvert warns about no missing alt text. The browser test opens the deck of lecture 03
(maths, an animation and widgets) in Debian's Chromium with every non-``file://`` request blocked
and recorded, and checks paging, typeset maths, the animation's icons and the widgets' saved state.
``COURSE_SKIP_BROWSER=1`` skips the browser test only; the decks need ``npm ci --prefix slides``.
"""
from __future__ import annotations

import logging
import pathlib
import re
import urllib.parse

import nbformat
import pytest
from bs4 import BeautifulSoup
from matplotlib import pyplot as plt
from matplotlib.animation import FuncAnimation
from nbconvert import SlidesExporter

from browser_support import SKIP_BROWSER, SKIP_REASON, chromium
from course_lib import slides
from course_lib.validation import CourseValueError

ROOT = pathlib.Path(__file__).resolve().parents[1]
LECTURES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PLACEHOLDER_ALT = "No description has been provided for this image"
REMOTE = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def fetched_references(page: str) -> list[str]:
    """Every URL the page makes the browser load: src/href of loading tags, the widget renderer,
    require.js module paths, CSS url()/@import and JS imports (links of <a> are not fetched)."""
    soup = BeautifulSoup(page, "html.parser")
    refs = [tag[attr] for tag in soup.find_all(True) if tag.name != "a"
            for attr in ("src", "href", "poster", "data") if tag.has_attr(attr) and isinstance(tag[attr], str)]
    for script in soup.find_all("script"):
        text = script.string or ""
        if script.get("type", "text/javascript") in ("text/javascript", "module"):
            refs += re.findall(r"widgetRendererSrc = '([^']+)'", text)
            refs += re.findall(r"\bimport\b[^;'\"]*?\(?\s*['\"]([^'\"]+)['\"]", text)
            if "require(" in text:
                refs += re.findall(r"\"([^\"\s]+\.js)\"", text)
    for style in soup.find_all("style"):
        refs += re.findall(r"(?:url\(\s*['\"]?|@import\s+['\"])([^'\")\s]+)", style.string or "")
    return [ref for ref in refs if not ref.startswith(("data:", "#"))]


def local_file(ref: str, page_dir: pathlib.Path) -> pathlib.Path:
    path = urllib.parse.unquote(urllib.parse.urlsplit(ref).path)
    return (page_dir / path).resolve()


def stylesheet_imports(css_file: pathlib.Path) -> list[str]:
    return re.findall(r"@import\s+(?:url\(\s*)?['\"]?([^'\")\s;]+)", css_file.read_text(errors="replace"))


# ---------------------------------------------------------------------------------- fast tests

@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Every lecture as a deck and as a page, with nbconvert's warnings recorded per lecture."""
    slides.check_assets()  # fails with the install instruction when node_modules is missing
    out = tmp_path_factory.mktemp("decks")
    records: dict[tuple[str, str], list[str]] = {}

    class Recorder(logging.Handler):
        def emit(self, record):
            self.current.append(record.getMessage())

    recorder = Recorder(level=logging.WARNING)
    logger = logging.getLogger("traitlets")
    logger.addHandler(recorder)
    try:
        for to in ("slides", "html"):
            for lecture in LECTURES:
                recorder.current = records[to, lecture.stem] = []
                slides.build(lecture, to, out)
    finally:
        logger.removeHandler(recorder)
    return out, records


@pytest.mark.parametrize("to", ["slides", "html"])
@pytest.mark.parametrize("lecture", [p.stem for p in LECTURES])
def test_page_loads_nothing_from_the_network(built, lecture, to):
    out, _ = built
    page_file = out / (lecture + (".slides.html" if to == "slides" else ".html"))
    page = page_file.read_text(encoding="utf-8")
    refs = fetched_references(page)
    assert refs, "no asset reference found: the checker reads nothing"
    assert [r for r in refs if REMOTE.match(r)] == [], f"{page_file.name} loads from the network"
    stylesheets = []
    for ref in refs:
        path = local_file(ref, out)
        assert path.is_file(), f"{page_file.name} refers to {ref}, which does not exist ({path})"
        if path.suffix == ".css":
            stylesheets.append(path)
    assert any(s.name == "font-awesome.min.css" for s in stylesheets) or "_anim_" not in page
    for sheet in stylesheets:  # a theme that imports a web font would fetch it (reveal's simple.css does)
        for ref in stylesheet_imports(sheet):
            assert not REMOTE.match(ref), f"{sheet} imports {ref}"
            assert (sheet.parent / urllib.parse.urlsplit(ref).path).is_file(), f"{sheet} imports {ref}"
    assert "bootstrapcdn" not in page and "cdnjs" not in page and "unpkg" not in page


@pytest.mark.parametrize("to", ["slides", "html"])
@pytest.mark.parametrize("lecture", [p.stem for p in LECTURES])
def test_every_image_has_alt_text_and_nbconvert_warns_of_none(built, lecture, to):
    out, records = built
    assert not [m for m in records[to, lecture] if "Alternative text" in m], records[to, lecture]
    page_file = out / (lecture + (".slides.html" if to == "slides" else ".html"))
    soup = BeautifulSoup(page_file.read_text(encoding="utf-8"), "html.parser")
    for img in soup.find_all("img"):
        assert img.get("alt", "").strip() not in ("", PLACEHOLDER_ALT), str(img)[:200]


def test_the_checks_catch_nbconvert_defaults(caplog):
    """Plain nbconvert on lecture 03: CDN URLs and the alt-text warning, both seen by the checks."""
    nb = nbformat.read(ROOT / "notebooks" / "03_composing_flows.ipynb", as_version=4)
    with caplog.at_level(logging.WARNING, logger="traitlets"):
        page, _ = SlidesExporter().from_notebook_node(nb)
    assert any("Alternative text is missing" in r.getMessage() for r in caplog.records)
    remote = [r for r in fetched_references(page) if REMOTE.match(r)]
    assert any("reveal.js" in r for r in remote) and any("MathJax" in r or "mathjax" in r for r in remote)
    assert any("html-manager" in r for r in remote)
    # matplotlib's player, displayed without course_lib.plotting.show_animation, links Font Awesome
    # from a CDN
    fig, ax = plt.subplots()
    player = FuncAnimation(fig, lambda i: [], frames=2).to_jshtml()
    plt.close(fig)
    page = page.replace("</body>", player + "</body>")
    remote = [r for r in fetched_references(page) if REMOTE.match(r)]
    assert any("font-awesome" in r for r in remote)
    assert set(slides.remote_fetches(page)) >= {r for r in remote if "font-awesome" in r}
    local = slides.offline_html(page, "fa/font-awesome.min.css")
    assert not [r for r in fetched_references(local) if "font-awesome" in r and REMOTE.match(r)]


def test_missing_node_modules_names_the_install_command(tmp_path, capsys, monkeypatch):
    with pytest.raises(slides.SlideAssetsMissing, match=r"npm ci --prefix slides"):
        slides.build(LECTURES[0], "slides", tmp_path / "out", node_modules=tmp_path / "nothing")
    assert not (tmp_path / "out").exists()
    monkeypatch.setattr(slides, "NODE_MODULES", tmp_path / "nothing")
    assert slides.main(["03", "--out", str(tmp_path / "out")]) == 2
    assert "npm ci --prefix slides" in capsys.readouterr().err


def test_lectures_are_found_by_number_name_or_path():
    lecture = ROOT / "notebooks" / "03_composing_flows.ipynb"
    for name in ("3", "03", "03_composing_flows", "03_composing_flows.ipynb", str(lecture)):
        assert slides.find_lectures([name]) == [lecture], name
    assert slides.find_lectures() == LECTURES
    with pytest.raises(CourseValueError, match=r"expected a lecture number.*got '99'"):
        slides.find_lectures(["99"])


def test_output_never_goes_into_notebooks_and_the_command_writes_where_asked(tmp_path, capsys):
    with pytest.raises(CourseValueError, match="outside"):
        slides.build(LECTURES[0], "html", ROOT / "notebooks")
    with pytest.raises(CourseValueError, match="expected --to slides or html"):
        slides.make_exporter("pdf", tmp_path)
    assert slides.main(["00", "--to", "html", "--out", str(tmp_path)]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["00_start_here.html"]
    assert "00_start_here.html" in capsys.readouterr().out


# ------------------------------------------------------------------------------- browser test

REVEAL = """() => {
  const defined = window.requirejs && requirejs.s.contexts._.defined;
  for (const key in defined || {}) {
    if (/reveal\\.js$/.test(key) && defined[key] && defined[key].isReady && defined[key].isReady())
      return defined[key];
  }
  return null;
}"""


def saved_readouts(nb) -> list[str]:
    """The readout each saved slider shows (value formatted by its readout_format)."""
    state = nb.metadata["widgets"][WIDGET_STATE]["state"]
    shown = []
    for model in state.values():
        s = model["state"]
        if model["model_name"] in ("FloatSliderModel", "IntSliderModel") and s.get("readout", True):
            shown.append(format(s["value"], s.get("readout_format", "d")))
    return shown


@pytest.mark.skipif(SKIP_BROWSER, reason=SKIP_REASON)
def test_deck_works_offline_in_chromium(tmp_path):
    lecture = ROOT / "notebooks" / "03_composing_flows.ipynb"
    deck = slides.build(lecture, "slides", tmp_path)
    nb = nbformat.read(lecture, as_version=4)
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        network, errors = [], []

        def only_files(route):
            if route.request.url.startswith("file://"):
                route.continue_()
            else:
                network.append(route.request.url)
                route.abort()
        context.route("**/*", only_files)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(deck.as_uri(), wait_until="load")
        page.wait_for_function(f"() => ({REVEAL})() !== null", timeout=20_000)

        def indices():
            return page.evaluate(f"() => ({REVEAL})().getIndices()")

        # maths: every TeX script has its typeset frame, and no slide keeps raw $...$
        page.evaluate("() => new Promise(done => MathJax.Hub.Queue(done))")
        maths = page.evaluate("""() => {
          const scripts = [...document.querySelectorAll('script[type^="math/tex"]')];
          const raw = [...document.querySelectorAll('.jp-MarkdownOutput')].map(cell => {
            const copy = cell.cloneNode(true);
            copy.querySelectorAll('script, .MJX_Assistive_MathML').forEach(e => e.remove());
            return (copy.textContent.match(/\\$[^$\\n]+\\$/g) || []).join(' | ');
          }).filter(text => text);
          return {scripts: scripts.length, typeset: scripts.filter(s => document.getElementById(s.id + '-Frame')).length,
                  raw: raw};
        }""")
        texts = sum(c.source.count("$") for c in nb.cells if c.cell_type == "markdown")
        assert maths["scripts"] > 20 and texts > 40, (maths, texts)
        assert maths["typeset"] == maths["scripts"], maths
        assert maths["raw"] == [], maths["raw"][:3]

        # paging with the arrow keys
        assert indices()["h"] == 0
        page.keyboard.press("ArrowRight")
        page.wait_for_function(f"() => ({REVEAL})().getIndices().h === 1", timeout=5_000)
        page.keyboard.press("ArrowLeft")
        page.wait_for_function(f"() => ({REVEAL})().getIndices().h === 0", timeout=5_000)

        # widgets drawn by the html manager at their saved values
        page.wait_for_function("() => document.querySelectorAll('.widget-slider').length > 0"
                               " && !document.body.innerText.includes('Loading widget')", timeout=20_000)
        readouts = page.evaluate("() => [...document.querySelectorAll('.widget-slider .widget-readout')]"
                                 ".map(e => e.textContent.trim() || e.value)")
        saved = saved_readouts(nb)
        assert readouts and sorted(readouts) == sorted(saved), (readouts, saved)

        # the animation's slide: controls visible, Font Awesome loaded from the local copy
        target = page.evaluate(f"""() => {{ const R = ({REVEAL})();
            const slide = R.getSlides().find(s => s.querySelector('.animation'));
            return slide ? R.getIndices(slide) : null; }}""")
        assert target is not None, "no slide holds an animation"
        page.evaluate(f"([h, v]) => ({REVEAL})().slide(h, v)", [target["h"], target["v"]])
        buttons = page.locator("section.present .animation button")
        assert buttons.count() >= 9
        buttons.first.scroll_into_view_if_needed()
        assert buttons.first.is_visible()
        font = page.evaluate("""async () => {
          const faces = await document.fonts.load('16px FontAwesome', '\\uf04b');
          const icon = document.querySelector('section.present .animation button i.fa');
          return {faces: faces.map(f => f.status), family: getComputedStyle(icon, '::before').fontFamily,
                  glyph: getComputedStyle(icon, '::before').content, width: icon.getBoundingClientRect().width};
        }""")
        assert font["faces"] and set(font["faces"]) == {"loaded"}, font
        # Font Awesome 4 from slides/node_modules, or 5, which the widget manager brings along
        assert re.search(r"Font ?Awesome", font["family"]) and font["glyph"] not in ("none", "normal", ""), font
        assert font["width"] > 0, font

        assert network == [], f"the deck tried to fetch {network[:5]}"
        assert errors == [], errors
