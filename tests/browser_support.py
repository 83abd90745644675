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
