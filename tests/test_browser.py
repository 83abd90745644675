"""Every lecture in a real JupyterLab, driven by headless Chromium through Playwright.

For each lecture: open it, run all cells, wait until the kernel is idle, then assert that no
cell shows an error, that every widget rendered, and that moving the first slider changes
the figure it drives. A screenshot of each lecture is saved for inspection.

The notebooks are copied to a temporary folder first, so nothing the browser does (autosave
included) can touch the committed files. The system Chromium is used (no browser download);
set COURSE_SKIP_BROWSER=1 to skip these tests explicitly. Without that variable a missing
browser is a failure, not a skip.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import sys
import time
import urllib.request

import pytest

from browser_support import SKIP_BROWSER, SKIP_REASON, chromium, free_port, jupyter_server, require_chromium

ROOT = pathlib.Path(__file__).resolve().parents[1]
LECTURES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
if SKIP_BROWSER:
    pytest.skip(SKIP_REASON, allow_module_level=True)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require_chromium()
    work = tmp_path_factory.mktemp("lab")
    root = work / "notebooks"
    shutil.copytree(ROOT / "notebooks", root)
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(work / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(work / "workspaces"), JUPYTER_CONFIG_DIR=str(work / "config"),
               JUPYTER_RUNTIME_DIR=str(work / "runtime"))
    env.pop("MPLBACKEND", None)
    # render every cell (no virtual scrolling), so each widget is in the page to be checked
    tracker = work / "settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    news = work / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port = free_port()
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
               f"--ServerApp.root_dir={root}", "--IdentityProvider.token=", "--ServerApp.password=",
               "--ServerApp.disable_check_xsrf=True", "--allow-root", "--LabApp.expose_app_in_browser=True",
               "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    url = f"http://127.0.0.1:{port}"
    with jupyter_server(command, root, env, work / "lab.log", f"{url}/api/status"):
        yield url, work


@pytest.fixture(scope="module")
def browser(lab):
    with chromium() as browser:
        yield browser


STATE = """(path) => {
  if (!window.jupyterapp) return null;
  const panel = window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.content || !panel.sessionContext || !panel.sessionContext.session) return null;
  if (panel.context.path !== path) return {status: 'other', pending: -1, errors: [], path: panel.context.path};
  const kernel = panel.sessionContext.session.kernel;
  const cells = panel.content.model.cells;
  const out = {status: kernel ? kernel.status : 'none', pending: 0, errors: []};
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i).toJSON();
    if (cell.cell_type !== 'code' || !cell.source.length) continue;
    if (cell.execution_count === null) out.pending += 1;
    for (const o of cell.outputs || []) {
      if (o.output_type === 'error') out.errors.push(`cell ${i}: ${o.ename}: ${o.evalue}`);
    }
  }
  return out;
}"""


def stop_all_kernels(url: str) -> None:
    """Delete every session on the server, so the next lecture starts on a quiet machine."""
    with urllib.request.urlopen(f"{url}/api/sessions", timeout=30) as reply:
        sessions = json.load(reply)
    for session in sessions:
        request = urllib.request.Request(f"{url}/api/sessions/{session['id']}", method="DELETE")
        urllib.request.urlopen(request, timeout=60).close()


def figure_sources(page) -> list[str]:
    return page.eval_on_selector_all(".jp-OutputArea img", "els => els.map(e => e.src.slice(-400))")


def wait_for_new_figure(page, before: list[str], seconds: float = 8.0) -> bool:
    for _ in range(int(seconds / 0.25)):
        page.wait_for_timeout(250)
        if figure_sources(page) != before:
            return True
    return False


@pytest.mark.parametrize("path", LECTURES, ids=lambda p: p.stem)
def test_lecture_runs_in_jupyterlab_and_its_widgets_respond(lab, browser, path, tmp_path_factory):
    url, work = lab
    shots = work / "screenshots"
    shots.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        # a workspace of its own, so JupyterLab restores no other lecture alongside this one
        page.goto(f"{url}/lab/workspaces/{path.stem}/tree/{path.name}", wait_until="domcontentloaded",
                  timeout=120_000)
        page.wait_for_function(f"() => (({STATE})({path.name!r}) || {{}}).status === 'idle'", timeout=180_000)
        # clear the stored outputs so only what this run produces is judged
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        deadline, state, idle_polls = time.time() + 240, None, 0
        while time.time() < deadline:
            time.sleep(1.0)
            state = page.evaluate(STATE, path.name)
            # idle twice in a row: finished, or stopped by an error (Run All stops there)
            idle_polls = idle_polls + 1 if state and state["status"] == "idle" else 0
            if idle_polls >= 2 and (state["pending"] == 0 or state["errors"]):
                break
        assert state and not state["errors"], f"{path.name}: error outputs: {state and state['errors']}"
        assert state["pending"] == 0, f"{path.name}: cells still not run after 240 s: {state}"
        page.wait_for_function("() => !document.querySelector('.jp-Notebook').innerText"
                               ".includes('Loading widget...')", timeout=60_000)
        body = page.inner_text(".jp-Notebook")
        assert "Error displaying widget" not in body
        controls = ".widget-slider .noUi-handle, .widget-toggle-buttons button, .widget-dropdown select"
        page.wait_for_function(f"() => [...document.querySelectorAll('{controls}')]"
                               ".some(e => e.offsetParent !== null)", timeout=60_000)
        before = figure_sources(page)
        handles = page.locator(".widget-slider .noUi-handle").filter(visible=True)
        switches = page.locator(".widget-toggle-buttons button, .widget-dropdown select").filter(visible=True)
        assert handles.count() + switches.count() > 0, f"{path.name}: no slider or switch rendered"
        changed = False
        if handles.count():
            handle = handles.first
            handle.scroll_into_view_if_needed()
            label = handle.locator("xpath=ancestor::div[contains(@class, 'widget-slider')][1]") \
                .locator(".widget-label").first.inner_text()
            # a slider may start at either end of its range: try both directions
            for key in ("ArrowLeft", "ArrowRight"):
                handle.focus()
                for _ in range(5):
                    page.keyboard.press(key)
                    page.wait_for_timeout(100)
                changed = wait_for_new_figure(page, before)
                if changed:
                    break
        else:  # the lecture's main widget is a switch: choose its other value
            switch = switches.first
            switch.scroll_into_view_if_needed()
            label = "dropdown" if switch.evaluate("e => e.tagName") == "SELECT" else "toggle buttons"
            if switch.evaluate("e => e.tagName") == "SELECT":
                options = switch.locator("option").all_inner_texts()
                switch.select_option(label=options[1 if len(options) > 1 else 0])
            else:
                page.locator(".widget-toggle-buttons").first.locator("button").nth(1).click()
            changed = wait_for_new_figure(page, before)
        assert changed, f"{path.name}: moving the first slider (or switch) did not change any figure"
    finally:
        page.screenshot(path=str(shots / f"{path.stem}.png"), full_page=False)
        page.close()
        stop_all_kernels(url)
    print(f"{path.stem}: moved {label!r}; screenshot {shots / (path.stem + '.png')}")
