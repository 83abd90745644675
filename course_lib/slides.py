"""Lectures as reveal.js slide decks or static HTML pages that work offline.

Usage, from the repository root::

    npm ci --prefix slides                           # once: reveal.js, MathJax, ... into slides/node_modules
    python -m course_lib.slides                      # every lecture as a deck, into slides/out/
    python -m course_lib.slides 03 05 --to html      # static pages of lectures 03 and 05
    python -m course_lib.slides notebooks/03_composing_flows.ipynb --out /tmp/decks

A lecture is named by its number (``3`` or ``03``), its file name with or without ``.ipynb``, or
a path. Decks are written as ``NN_name.slides.html``, pages as ``NN_name.html``; open them
directly (``file://``) or through a web server whose root contains both the output folder and
``slides/node_modules`` (``python -m http.server`` from the repository root, for instance).
In a deck the arrow keys page through the slides.

Every script, style sheet and font the page loads comes from the npm packages pinned in
``slides/package.json`` (reveal.js 4, MathJax 2, require.js, jQuery, Font Awesome 4 for the
buttons of matplotlib's animations, and ``@jupyter-widgets/html-manager``, which draws each
widget at the value saved in the notebook), referenced by relative paths: nothing is fetched
from the network, and nothing is downloaded when this command runs. The notebooks are read as
committed (executed, with their widget state); none is executed or written. Each image gets the
one-line ``alt`` text its output's metadata carries.
"""
from __future__ import annotations

import argparse
import html
import os
import pathlib
import re
import sys
import urllib.parse
from typing import Sequence

import jinja2
import nbformat
from nbconvert import HTMLExporter, SlidesExporter

from .validation import CourseValueError

__all__ = ["SlideAssetsMissing", "ASSETS", "check_assets", "find_lectures", "make_exporter",
           "offline_html", "remote_fetches", "build", "main"]

ROOT = pathlib.Path(__file__).resolve().parents[1]
LECTURES = ROOT / "notebooks"
NODE_MODULES = ROOT / "slides" / "node_modules"
DEFAULT_OUT = ROOT / "slides" / "out"
KINDS = {"slides": (SlidesExporter, ".slides.html"), "html": (HTMLExporter, ".html")}

#: every file a page loads, relative to ``node_modules`` (checked before anything is built)
ASSETS = {
    "reveal": "reveal.js/dist/reveal.js",
    "reveal_notes": "reveal.js/plugin/notes/notes.js",
    "reveal_css": "reveal.js/dist/reveal.css",
    "reveal_theme": "reveal.js/dist/theme/white.css",  # its fonts are local; simple.css imports Google Fonts
    "mathjax": "mathjax/MathJax.js",
    "mathjax_config": "mathjax/config/TeX-AMS_CHTML-full.js",
    "require": "requirejs/require.js",
    "jquery": "jquery/dist/jquery.min.js",
    "font_awesome": "font-awesome/css/font-awesome.min.css",
    "widgets": "@jupyter-widgets/html-manager/dist/embed-amd.js",
}
MATHJAX_CONFIG = "TeX-AMS_CHTML-full,Safe"  # the configuration nbconvert's templates expect

# nbconvert's templates with three changes: images carry the alt text of their output's metadata;
# no Mermaid loader (the reveal template imports Mermaid from a CDN on every page; no lecture draws
# a Mermaid diagram); widget labels in the page's sans-serif font (JupyterLab sets it, the page not)
# and headings as written (reveal's white theme capitalises them)
_TEMPLATE_NAME = "course_offline.html.j2"
_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_css -%}
<style>.jupyter-widgets { font-family: var(--jp-ui-font-family); }
html:root { --r-heading-text-transform: none; }</style>
{%- endblock html_head_css -%}
{% block data_png scoped -%}{{ super() | with_alt(output | get_metadata('alt', 'image/png')) }}
{%- endblock data_png %}
{% block data_jpg scoped -%}{{ super() | with_alt(output | get_metadata('alt', 'image/jpeg')) }}
{%- endblock data_jpg %}
"""

# matplotlib's jshtml animations link Font Awesome 4.4 from a CDN for their buttons
_FONT_AWESOME_CDN = re.compile(r"https?://[^\"'\s<>]*font-awesome[^\"'\s<>]*?\.css")
_FETCHING_ATTRIBUTE = re.compile(
    r"<(?:script|link|img|iframe|source|video|audio|embed|track|input)\b[^>]*?\s"
    r"(?:src|href|poster|srcset)\s*=\s*[\"']?\s*(https?://[^\"'\s>]+)", re.IGNORECASE)
_CSS_URL = re.compile(r"(?:url\(\s*[\"']?|@import\s+[\"'])(https?://[^\"')\s]+)", re.IGNORECASE)
_JS_IMPORT = re.compile(r"\bimport\b[^;\"'\n]*?\(?\s*[\"'](https?://[^\"']+)", re.IGNORECASE)


class SlideAssetsMissing(CourseValueError):
    """The npm packages the pages load from are not installed."""


def check_assets(node_modules: pathlib.Path | None = None) -> None:
    """Raise :class:`SlideAssetsMissing` unless every file of :data:`ASSETS` is installed."""
    node_modules = NODE_MODULES if node_modules is None else pathlib.Path(node_modules)
    missing = [path for path in ASSETS.values() if not (node_modules / path).is_file()]
    if missing:
        raise SlideAssetsMissing(
            f"course_lib.slides: the offline copies of reveal.js, MathJax and the other page assets "
            f"are expected in {node_modules}, but {len(missing)} of {len(ASSETS)} files are missing "
            f"(first: {missing[0]}). Install them once with `npm ci --prefix slides` from the "
            f"repository root; nothing is downloaded while building.")


def find_lectures(names: Sequence[str] = (), folder: pathlib.Path = LECTURES) -> list[pathlib.Path]:
    """The lecture notebooks named by number, file name or path; every lecture if none is named."""
    lectures = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return lectures
    found = []
    for name in names:
        path = pathlib.Path(name)
        if path.suffix == ".ipynb" and path.is_file():
            found.append(path.resolve())
            continue
        key = path.name.removesuffix(".ipynb")
        matches = [lec for lec in lectures
                   if lec.stem == key or (key.isdigit() and lec.stem.split("_")[0] == f"{int(key):02d}")]
        if len(matches) != 1:
            raise CourseValueError(
                f"course_lib.slides: expected a lecture number, a notebook name in {folder} or a path "
                f"to an .ipynb file, got {name!r} (lectures: {', '.join(lec.stem for lec in lectures)})")
        found.append(matches[0])
    return found


def _url(target: pathlib.Path, out_dir: pathlib.Path) -> str:
    """A relative URL from a page in ``out_dir`` to ``target``: works from file:// and when served."""
    try:
        relative = os.path.relpath(target, out_dir)
    except ValueError:  # another drive on Windows: no relative path exists
        return target.resolve().as_uri()
    return urllib.parse.quote(pathlib.PurePath(relative).as_posix(), safe="/@")


def _with_alt(image_html: str, alt: object) -> str:
    """The ``<img>`` of nbconvert's image block, with ``alt`` set when the output's metadata has one."""
    if not alt:
        return image_html
    return str(image_html).replace("<img", f'<img alt="{html.escape(str(alt), quote=True)}"', 1)


def make_exporter(to: str, out_dir: pathlib.Path, node_modules: pathlib.Path | None = None):
    """An nbconvert exporter for ``to`` ('slides' or 'html') whose every URL is a local copy."""
    node_modules = NODE_MODULES if node_modules is None else pathlib.Path(node_modules).resolve()
    if to not in KINDS:
        raise CourseValueError(f"course_lib.slides: expected --to slides or html, got {to!r}")
    out_dir = pathlib.Path(out_dir).resolve()

    def local(name: str) -> str:
        return _url(node_modules / ASSETS[name], out_dir)

    urls = dict(mathjax_url=f"{local('mathjax')}?config={MATHJAX_CONFIG}", require_js_url=local("require"),
                jquery_url=local("jquery"), widget_renderer_url=local("widgets"))
    if to == "slides":
        urls.update(reveal_url_prefix=_url(node_modules / "reveal.js", out_dir), reveal_theme="white",
                    font_awesome_url=local("font_awesome"))
    return KINDS[to][0](extra_loaders=[jinja2.DictLoader({_TEMPLATE_NAME: _TEMPLATE})],
                        template_file=_TEMPLATE_NAME, filters={"with_alt": _with_alt}, **urls)


def offline_html(page: str, font_awesome_url: str) -> str:
    """Point every Font Awesome CDN link (those of matplotlib's animations) at the local copy, and
    link that copy once in the head of a page whose animations were stored without the link
    (:func:`course_lib.plotting.show_animation` leaves it out: JupyterLab has its own copy)."""
    page = _FONT_AWESOME_CDN.sub(font_awesome_url, page)
    if 'class="fa ' in page and font_awesome_url not in page:
        page = page.replace("</head>", f'<link rel="stylesheet" href="{font_awesome_url}">\n</head>', 1)
    return page


def remote_fetches(page: str) -> list[str]:
    """The http(s) URLs in ``page`` a browser would fetch (links in prose are not among them)."""
    found = [m.group(1) for pattern in (_FETCHING_ATTRIBUTE, _CSS_URL, _JS_IMPORT)
             for m in pattern.finditer(page)]
    return sorted(set(found))


def build(lecture: str | os.PathLike, to: str = "slides", out: str | os.PathLike = DEFAULT_OUT,
          node_modules: pathlib.Path | None = None) -> pathlib.Path:
    """Write the deck (``to='slides'``) or page (``to='html'``) of one lecture; return its path."""
    node_modules = NODE_MODULES if node_modules is None else pathlib.Path(node_modules).resolve()
    check_assets(node_modules)
    lecture, out = pathlib.Path(lecture).resolve(), pathlib.Path(out).resolve()
    if out == LECTURES.resolve() or LECTURES.resolve() in out.parents:
        raise CourseValueError(f"course_lib.slides: expected an output folder outside {LECTURES} "
                               f"(students see everything in it), got {out}")
    out.mkdir(parents=True, exist_ok=True)
    exporter = make_exporter(to, out, node_modules)
    nb = nbformat.read(lecture, as_version=4)
    page, _ = exporter.from_notebook_node(
        nb, resources={"metadata": {"name": lecture.stem, "path": str(lecture.parent)}})
    page = offline_html(page, _url(node_modules / ASSETS["font_awesome"], out))
    remote = remote_fetches(page)
    if remote:
        raise CourseValueError(f"course_lib.slides: {lecture.name} would still fetch from the network "
                               f"after localising every asset: {', '.join(remote[:5])}")
    target = out / (lecture.stem + KINDS[to][1])
    target.write_text(page, encoding="utf-8")
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.slides", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lectures", nargs="*", metavar="LECTURE",
                        help="lecture number, notebook name or path (default: every lecture)")
    parser.add_argument("--to", choices=sorted(KINDS), default="slides",
                        help="a reveal.js deck (default) or a static HTML page")
    parser.add_argument("--out", default=str(DEFAULT_OUT), metavar="DIR",
                        help=f"output folder (default: {os.path.relpath(DEFAULT_OUT)})")
    args = parser.parse_args(argv)
    try:
        check_assets()
        lectures = find_lectures(args.lectures)
        for lecture in lectures:
            print(f"wrote {os.path.relpath(build(lecture, args.to, args.out))}", flush=True)
    except CourseValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
