"""JupyterLab as the course opens it: ``python -m course_lib.lab`` puts this folder first on
Jupyter's config path (``JUPYTER_CONFIG_PATH``). Plain ``jupyter lab`` does not read it.

This file: the file browser's root is the course repository (``notebooks/``, ``exercises/`` and
``solutions/`` side by side); lecture 00 opens in front, in a workspace of its own; no news feed, no
update check, an extension manager that only lists what is installed; the course's own notebooks
are trusted for the session, so their animations show before they are run; on Linux, kernels talk
to the server over local sockets, not TCP.

``labconfig/page_config.json`` switches off the plugin that asks about news, the extension
manager's panel, and the JupyterLab 3 MathJax extension that jupyterlab-rise still pulls in
(JupyterLab 4 typesets with its own MathJax).

``labconfig/default_setting_overrides.json`` changes defaults only, so a student's own JupyterLab
settings still win: no news, no update check; RISE slides in reveal.js's "white" theme, whose fonts
are installed (the default "simple" theme loads Google Fonts), scrolling when a slide is taller
than the screen; notebooks that attach off-screen cells when the browser is idle ("defer") rather
than skip them with CSS content-visibility, under which a stored animation whose frame is set
while off-screen stays 0 px wide.

Options given on the command line win over everything here.
"""
import os
import pathlib
import sys

from jupyter_core.paths import jupyter_runtime_dir

COURSE = pathlib.Path(__file__).resolve().parent.parent

c.ServerApp.root_dir = str(COURSE)  # noqa: F821 (``c`` is the config object Jupyter passes in)
# /course (served by course_lib.lab) redirects to lecture 00 in a workspace of the course's own,
# with the file browser at the root
c.ServerApp.jpserver_extensions.update({"course_lib.lab": True})  # noqa: F821
c.LabApp.default_url = "/course"  # noqa: F821
c.LabApp.news_url = None  # noqa: F821
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"  # noqa: F821
c.LabApp.extension_manager = "readonly"  # noqa: F821
# trust: course_lib.lab signs the notebooks of notebooks/, exercises/ and solutions/ when the server
# starts, so their animations and HTML outputs show before they are run; the signatures live in
# memory under a key made for this session, so nothing is written to the home directory
c.NotebookNotary.db_file = ":memory:"  # noqa: F821
c.NotebookNotary.secret = os.urandom(32)  # noqa: F821
# kernels talk to the server over local sockets in Jupyter's runtime folder rather than over TCP
# (ipykernel warns that TCP is unencrypted); a socket's path is limited to 107 bytes on Linux, so TCP
# stays where the runtime folder's path is too long for the longest one, and off Linux
_LONGEST_SOCKET = os.path.join(jupyter_runtime_dir(), f"kernel-{'0' * 36}-ipc-99999")
if sys.platform.startswith("linux") and len(os.fsencode(_LONGEST_SOCKET)) <= 107:
    c.KernelManager.transport = "ipc"  # noqa: F821
