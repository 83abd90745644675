"""What the browser tests share: the system Chromium (Debian's package, driven through Playwright,
which downloads nothing), the rule for skipping them, and a free local port.

``COURSE_SKIP_BROWSER=1`` skips the browser tests explicitly; without it a missing Chromium is a
failure, not a skip. ``COURSE_CHROMIUM`` points at another Chromium.
"""
from __future__ import annotations

import contextlib
import os
import pathlib
import socket
import subprocess
import time
import urllib.request

import pytest

CHROMIUM = os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium")
SKIP_BROWSER = os.environ.get("COURSE_SKIP_BROWSER") == "1"
SKIP_REASON = "browser tests skipped: COURSE_SKIP_BROWSER=1"
# no GPU, no sandbox (the suite may run as root in a container), nothing Chromium does on its own
# account: no background networking, component updates or sync
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def require_chromium() -> None:
    """Skip when the browser tests are switched off; fail, saying what to do, when Chromium is missing."""
    if SKIP_BROWSER:
        pytest.skip(SKIP_REASON)
    assert pathlib.Path(CHROMIUM).exists(), (
        f"Chromium not found at {CHROMIUM}: install it (apt-get install chromium), point COURSE_CHROMIUM "
        "at it, or set COURSE_SKIP_BROWSER=1 to skip the browser tests")


@contextlib.contextmanager
def chromium():
    """A headless Chromium (Playwright's ``Browser``), closed on exit."""
    require_chromium()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def jupyter_server(command: list[str], cwd, env: dict, log_path: pathlib.Path, status_url: str,
                   attempts: int = 240):
    """Run a Jupyter server ``command`` (its output into ``log_path``) until the block ends; wait
    first until ``status_url`` answers. A server that exits or never answers fails with its log."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            for _ in range(attempts):
                try:
                    urllib.request.urlopen(status_url, timeout=2).close()
                    break
                except Exception:
                    if proc.poll() is not None:
                        raise RuntimeError(log_path.read_text()) from None
                    time.sleep(0.25)
            else:
                raise RuntimeError("the server did not start: " + log_path.read_text()[-2000:])
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
