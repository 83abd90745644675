"""The course opens the way the README tells students: ``python -m course_lib.lab`` from the
repository root, with the JupyterLab configuration that ships in ``jupyter_config/``.

The browser test starts the launcher on a copy of the course (so an autosave cannot touch the
committed files; the shipped configuration is copied along, never replaced), with JupyterLab's
user settings, workspaces and runtime files in a temporary folder, then drives Debian's Chromium
through Playwright with every request that does not go to 127.0.0.1 blocked and recorded. It
checks what a student sees in the first seconds: lecture 00 in front, the file browser at the
repository's root, no news prompt, nothing leaving the machine, RISE's slideshow button, and a
reveal.js slideshow that pages with the arrow keys. A student's own settings still apply.

Set COURSE_SKIP_BROWSER=1 to skip the browser part; without it a missing Chromium is a failure.
"""
from __future__ import annotations

import json
import os
import pathlib
import secrets
import shutil
import sys
import tempfile

import nbformat
import pytest

from browser_support import chromium, free_port, jupyter_server, require_chromium
from jupyter_core.paths import jupyter_config_dir, jupyter_config_path

from course_lib import lab
from course_lib.validation import CourseValueError

ROOT = pathlib.Path(__file__).resolve().parents[1]
# what a student's checkout needs for the launcher (tests, the library's caches and any
# build output stay behind)
COURSE_FILES = ("course_lib", "notebooks", "exercises", "solutions", "instructors", "jupyter_config",
                "README.md")
FIRST_LECTURE = "notebooks/00_start_here.ipynb"
# a student's own choices, which the course's configuration must leave in force
STUDENT_THEME = "JupyterLab Dark"
STUDENT_DISABLED = "@jupyterlab/apputils-extension:print"


# -- the launcher, without a browser ----------------------------------------------------------

def test_the_repository_is_a_course_root_and_is_found_from_inside_it():
    assert lab.is_course_root(ROOT)
    assert lab.course_root(ROOT) == ROOT
    assert lab.course_root(ROOT / "notebooks") == ROOT
    assert lab.course_root(ROOT / "course_lib" / "widgets") == ROOT


def test_outside_the_repository_the_launcher_falls_back_to_the_checkout_it_is_imported_from(tmp_path):
    assert lab.course_root(tmp_path) == pathlib.Path(lab.__file__).resolve().parents[1] == ROOT


def test_a_folder_with_lectures_but_without_the_configuration_is_not_a_course_root(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / lab.FIRST_LECTURE).write_text("{}")
    assert not lab.is_course_root(tmp_path)
    (tmp_path / lab.CONFIG_DIR).mkdir()
    (tmp_path / lab.CONFIG_DIR / "jupyter_server_config.py").write_text("")
    assert lab.is_course_root(tmp_path)
    assert lab.course_root(tmp_path / "notebooks") == tmp_path


def test_with_no_course_anywhere_the_error_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setattr(lab, "__file__", str(tmp_path / "site-packages" / "course_lib" / "lab.py"))
    with pytest.raises(CourseValueError, match=r"course_lib\.lab: expected .*got .*cd into the repository"):
        lab.course_root(tmp_path)


def test_the_course_configuration_comes_first_on_jupyters_own_config_path(monkeypatch, tmp_path):
    mine = str(tmp_path / "mine")
    env = lab.lab_environment(ROOT, {"JUPYTER_CONFIG_PATH": mine, "HOME": "/home/student"})
    assert env["HOME"] == "/home/student"
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", env["JUPYTER_CONFIG_PATH"])
    monkeypatch.delenv("JUPYTER_NO_CONFIG", raising=False)
    path = jupyter_config_path()  # jupyter_core's reading of the variable, the one Jupyter uses
    assert path[:2] == [str(ROOT / "jupyter_config"), mine]
    # the user's own configuration folder stays on the path, behind the course's
    assert jupyter_config_dir() in path[2:]
    # launching twice (a terminal opened inside JupyterLab) does not pile up copies
    again = lab.lab_environment(ROOT, env)
    assert again["JUPYTER_CONFIG_PATH"] == env["JUPYTER_CONFIG_PATH"]


def test_the_shipped_lab_configuration_is_valid_json_naming_real_plugins():
    config = ROOT / "jupyter_config" / "labconfig"
    disabled = json.loads((config / "page_config.json").read_text())["disabledExtensions"]
    overrides = json.loads((config / "default_setting_overrides.json").read_text())
    schemas = pathlib.Path(sys.prefix) / "share" / "jupyter" / "lab" / "schemas"
    labextensions = pathlib.Path(sys.prefix) / "share" / "jupyter" / "labextensions"
    for plugin in overrides:  # each override targets a setting its plugin's schema declares
        package, name = plugin.split(":")
        schema = next(p for p in (schemas / package / f"{name}.json",
                                  labextensions / package / "schemas" / package / f"{name}.json")
                      if p.exists())
        properties = json.loads(schema.read_text())["properties"]
        assert set(overrides[plugin]) <= set(properties), plugin
    bundle = "\n".join(p.read_text(errors="ignore")
                       for p in (pathlib.Path(sys.prefix) / "share" / "jupyter" / "lab" / "static").glob("*.js"))
    for plugin in disabled:
        if ":" in plugin:  # a plugin of JupyterLab's own bundle
            assert f'"{plugin}"' in bundle or f"'{plugin}'" in bundle, plugin
        else:  # a whole prebuilt extension
            assert (labextensions / plugin / "package.json").exists(), plugin


def test_the_course_notebooks_are_trusted_in_memory_and_nothing_else_is(tmp_path):
    from nbformat.sign import NotebookNotary

    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns("0[1-9]*", "1*"))
    (tmp_path / "solutions").mkdir()
    shutil.copy2(ROOT / "solutions" / "01_change_of_variables_1d.ipynb", tmp_path / "solutions")
    (tmp_path / "elsewhere").mkdir()
    shutil.copy2(ROOT / "notebooks" / "01_change_of_variables_1d.ipynb", tmp_path / "elsewhere")
    notary = NotebookNotary(db_file=":memory:", secret=secrets.token_bytes(32))
    signed = lab.trust_course_notebooks(notary, tmp_path)
    assert signed == [tmp_path / "notebooks" / "00_start_here.ipynb",
                      tmp_path / "solutions" / "01_change_of_variables_1d.ipynb"]
    for path in signed:
        assert notary.check_signature(nbformat.read(path, as_version=4)), path
    outside = nbformat.read(tmp_path / "elsewhere" / "01_change_of_variables_1d.ipynb", as_version=4)
    assert not notary.check_signature(outside)
    changed = nbformat.read(signed[0], as_version=4)
    changed.cells[0].source += " "
    assert not notary.check_signature(changed)  # trust is for the content as it was on disk


def test_the_instructor_guide_is_not_among_the_lectures():
    assert not (ROOT / "notebooks" / "INSTRUCTORS.md").exists()
    assert (ROOT / "instructors" / "INSTRUCTORS.md").is_file()


# -- the launcher, in a browser ---------------------------------------------------------------

@pytest.fixture(scope="module")
def course(tmp_path_factory):
    require_chromium()
    work = tmp_path_factory.mktemp("launch")
    repo = work / "course"
    for name in COURSE_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, repo / name)
    # the student's own JupyterLab: a dark theme and a plugin switched off, in their own places
    settings, user_config = work / "settings", work / "user-config"
    theme = settings / "@jupyterlab" / "apputils-extension" / "themes.jupyterlab-settings"
    theme.parent.mkdir(parents=True)
    theme.write_text(json.dumps({"theme": STUDENT_THEME}))
    (user_config / "labconfig").mkdir(parents=True)
    (user_config / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {STUDENT_DISABLED: True}}))
    # a short runtime folder, as in a student's home directory, has room for the kernels' sockets
    runtime = tempfile.mkdtemp(prefix="nf-runtime-")
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(settings),
               JUPYTERLAB_WORKSPACES_DIR=str(work / "workspaces"), JUPYTER_RUNTIME_DIR=runtime,
               JUPYTER_CONFIG_DIR=str(user_config))
    for name in ("JUPYTER_CONFIG_PATH", "JUPYTER_NO_CONFIG", "PYTHONPATH", "MPLBACKEND"):
        env.pop(name, None)
    port, token = free_port(), secrets.token_hex(16)
    # the README's command, run from the repository's root, with the options a test needs
    # (--allow-root only matters where the suite runs as root, in a container)
    command = [sys.executable, "-m", "course_lib.lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
               f"--IdentityProvider.token={token}", "--LabApp.expose_app_in_browser=True", "--allow-root"]
    url = f"http://127.0.0.1:{port}"
    try:
        with jupyter_server(command, repo, env, work / "lab.log", f"{url}/api/status?token={token}"):
            yield {"url": url, "token": token, "repo": repo, "log": work / "lab.log"}
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(course):
    with chromium() as browser:
        yield browser


class Offline:
    """A browser context that lets through only requests to 127.0.0.1 and records every request."""

    def __init__(self, browser):
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.requests: list[str] = []
        self.blocked: list[str] = []
        self.context.route("**/*", self._route)

    def _route(self, route):
        url = route.request.url
        self.requests.append(url)
        if url.startswith("http://127.0.0.1:"):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def page(self):
        page = self.context.new_page()
        page.on("websocket", lambda ws: self.requests.append(ws.url) if ws.url.startswith("ws://127.0.0.1:")
                else self.blocked.append(ws.url))
        return page


@pytest.fixture(scope="module")
def student_view(course, browser):
    """What the launcher's landing page shows, once JupyterLab has restored its layout and a few
    seconds have passed for any notification to appear."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    offline = Offline(browser)
    page = offline.page()
    # the root of the server, which redirects to the course's landing page
    page.goto(f"{course['url']}/?token={course['token']}", wait_until="domcontentloaded", timeout=60_000)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.restored.then(() => true)",
                           timeout=60_000)
    # a lecture's cells and the file browser's listing render a little after the layout; if they
    # never do, the tests below say what is missing
    for ready in ("() => { const w = window.jupyterapp.shell.currentWidget;"
                  " return w && w.content && w.content.widgets && w.content.widgets.length > 0 }",
                  "() => document.querySelector('.jp-DirListing-item') !== null"):
        try:
            page.wait_for_function(ready, timeout=30_000)
        except PlaywrightTimeout:
            pass
    page.wait_for_timeout(4_000)
    # widgets are drawn from the notebook's saved state once the kernel is up
    try:
        page.wait_for_function("() => document.querySelector('.jp-Notebook .widget-slider') !== null"
                               " && !document.querySelector('.jp-Notebook').innerText.includes('Loading widget')",
                               timeout=30_000)
    except PlaywrightTimeout:
        pass
    view = page.evaluate("""() => {
        const config = JSON.parse(document.getElementById('jupyter-config-data').textContent);
        const toolbar = [...document.querySelectorAll('.jp-NotebookPanel-toolbar [data-jp-item-name]')];
        return {
          current: ((window.jupyterapp.shell.currentWidget || {}).context || {}).path,
          breadcrumbs: (document.querySelector('.jp-BreadCrumbs') || {innerText: ''}).innerText.trim(),
          listing: [...document.querySelectorAll('.jp-DirListing-itemName')].map(e => e.innerText.trim()),
          toasts: [...document.querySelectorAll('.Toastify__toast')].map(e => e.innerText),
          notifications: (document.querySelector('.jp-Notification-Status') || {}).innerText,
          riseCommands: window.jupyterapp.commands.listCommands().filter(c => c.startsWith('RISE:')),
          riseButton: toolbar.filter(e => e.getAttribute('data-jp-item-name') === 'RISE-button')
                             .map(e => (e.querySelector('[data-command]') || e).getAttribute('data-command')),
          theme: document.body.dataset.jpThemeName,
          untrusted: (() => { const w = window.jupyterapp.shell.currentWidget, out = [];
                              if (!w || !w.model) return ['no notebook'];
                              for (let i = 0; i < w.model.cells.length; i++) {
                                const cell = w.model.cells.get(i);
                                if (cell.type === 'code' && cell.outputs.length && !cell.trusted) out.push(i);
                              }
                              return out; })(),
          widgetText: (document.querySelector('.jp-Notebook') || {innerText: ''}).innerText
                        .split('\\n').filter(l => /Loading widget|Error displaying widget/.test(l)),
          sliders: document.querySelectorAll('.jp-Notebook .widget-slider').length,
          disabled: config.disabledExtensions,
          news: config.news,
          extensionManager: config.extensionManager.name,
          serverRoot: config.serverRoot,
        };
    }""")
    view["requests"], view["blocked"] = list(offline.requests), list(offline.blocked)
    yield view
    offline.context.close()


def test_lecture_00_is_in_front(student_view):
    assert student_view["current"] == FIRST_LECTURE


def test_the_file_browser_shows_the_repository_root(student_view, course):
    assert pathlib.Path(student_view["serverRoot"]).resolve() == course["repo"].resolve()
    assert student_view["breadcrumbs"] == "/"
    assert {"notebooks", "exercises", "solutions", "instructors"} <= set(student_view["listing"])


def test_no_news_prompt_and_no_notification(student_view):
    assert student_view["toasts"] == []
    assert student_view["notifications"] == "0"
    assert student_view["news"] == {"disabled": True}


def test_no_request_leaves_the_machine_and_no_network_feature_is_asked_for(student_view):
    assert student_view["requests"], "the page made no request at all: the recording is broken"
    assert student_view["blocked"] == []
    network_apis = ("/lab/api/news", "/lab/api/update", "/lab/api/extensions")
    assert [u for u in student_view["requests"] if any(api in u for api in network_apis)] == []
    assert student_view["extensionManager"] == "read-only"
    assert "@jupyterlab/apputils-extension:announcements" in student_view["disabled"]
    assert "@jupyterlab/extensionmanager-extension:plugin" in student_view["disabled"]


def test_the_lectures_kernel_runs_over_local_sockets_without_the_tcp_warning(student_view, course):
    log = course["log"].read_text()
    assert "Kernel started" in log, "the lecture's kernel did not start: " + log[-2000:]
    assert "without encryption" not in log


def test_the_lecture_is_trusted_and_its_widgets_show_their_saved_state_before_it_runs(student_view):
    assert student_view["untrusted"] == []
    assert student_view["widgetText"] == []
    assert student_view["sliders"] > 0


def test_the_students_own_settings_still_apply(student_view):
    assert student_view["theme"] == STUDENT_THEME
    assert STUDENT_DISABLED in student_view["disabled"]


def test_rise_offers_its_slideshow_in_the_notebook_toolbar(student_view):
    assert "RISE:preview" in student_view["riseCommands"]
    assert student_view["riseButton"] == ["RISE:preview"]


def test_the_rise_slideshow_pages_with_the_arrow_keys_offline(course, browser):
    offline = Offline(browser)
    page = offline.page()
    try:
        # the page RISE's toolbar button shows beside the notebook
        page.goto(f"{course['url']}/rise/{FIRST_LECTURE}?token={course['token']}",
                  wait_until="domcontentloaded", timeout=60_000)
        page.wait_for_selector(".reveal.ready .slides > section.present", timeout=45_000)
        slide = ("() => [...document.querySelectorAll('.reveal .slides > section')]"
                 ".findIndex(s => s.classList.contains('present'))")
        assert page.evaluate(slide) == 0
        assert "START HERE" in page.inner_text(".reveal .slides > section.present").upper()
        page.keyboard.press("ArrowRight")
        page.wait_for_function(f"() => ({slide})() === 1", timeout=10_000)
        page.keyboard.press("ArrowLeft")
        page.wait_for_function(f"() => ({slide})() === 0", timeout=10_000)
        assert page.locator(".reveal .slides > section").count() > 5
        assert offline.requests and offline.blocked == []
    finally:
        offline.context.close()
