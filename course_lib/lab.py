"""Open the course in JupyterLab: ``python -m course_lib.lab [JUPYTERLAB OPTIONS...]``.

Run it from the repository (or any folder inside it). JupyterLab starts with the repository as
the root of its file browser, so ``notebooks/``, ``exercises/`` and ``solutions/`` are all a
click away, and lecture 00 open in front. The configuration ships with the course, in
``jupyter_config/``: no news prompt, no news feed, no update check, no extension search on PyPI,
slides (RISE) in a theme whose fonts are installed, and the course's own notebooks trusted for the
session, so their stored animations play before a lecture is run. The launcher only puts that folder first on
Jupyter's config path for this one run (``JUPYTER_CONFIG_PATH``); it writes nothing anywhere, and
a student's own Jupyter configuration and JupyterLab settings keep working underneath the course's.

Any option is passed on to ``jupyter lab``, and wins over the course's configuration:
``python -m course_lib.lab --port 8890 --no-browser``.
"""
from __future__ import annotations

import os
import pathlib
import sys
from typing import Mapping, Sequence

from .validation import CourseValueError

CONFIG_DIR = "jupyter_config"
FIRST_LECTURE = pathlib.Path("notebooks") / "00_start_here.ipynb"
# where the browser lands: lecture 00 in front, in a workspace of the course's own (the student's
# other JupyterLab layouts are left alone), the file browser at the root rather than in notebooks/
START_PAGE = "course"
LANDING = f"lab/workspaces/nf-course/tree/{FIRST_LECTURE.as_posix()}?file-browser-path=/"
# the course's own notebooks, trusted for the session (see trust_course_notebooks)
TRUSTED_FOLDERS = ("notebooks", "exercises", "solutions")


def is_course_root(folder: pathlib.Path) -> bool:
    """True for a folder that holds the course's lectures and its JupyterLab configuration."""
    return (folder / FIRST_LECTURE).is_file() and (folder / CONFIG_DIR / "jupyter_server_config.py").is_file()


def course_root(start: str | os.PathLike | None = None) -> pathlib.Path:
    """The course repository: ``start`` (the working directory by default) or the nearest folder
    above it that is one, else the repository this ``course_lib`` was imported from.

    >>> root = course_root()
    >>> (root / "notebooks" / "00_start_here.ipynb").is_file()
    True
    >>> course_root(root / "notebooks") == root
    True
    """
    here = pathlib.Path.cwd() if start is None else pathlib.Path(start)
    here = here.resolve()
    for folder in (here, *here.parents):
        if is_course_root(folder):
            return folder
    package_repo = pathlib.Path(__file__).resolve().parent.parent
    if is_course_root(package_repo):
        return package_repo
    raise CourseValueError(
        f"course_lib.lab: expected to run inside the course repository (a folder with {FIRST_LECTURE} "
        f"and {CONFIG_DIR}/), got {here}, and course_lib itself is imported from {package_repo}, "
        "which is not one either; cd into the repository first")


def lab_environment(root: pathlib.Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``environ`` (``os.environ`` by default) with the course's configuration first on
    ``JUPYTER_CONFIG_PATH``, ahead of whatever the variable already held.

    >>> env = lab_environment(pathlib.Path("/course"), {"JUPYTER_CONFIG_PATH": "/mine"})
    >>> env["JUPYTER_CONFIG_PATH"].split(os.pathsep)
    ['/course/jupyter_config', '/mine']
    """
    env = dict(os.environ if environ is None else environ)
    ours = str(root / CONFIG_DIR)
    theirs = [p for p in env.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p and p != ours]
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join([ours, *theirs])
    return env


def trust_course_notebooks(notary, root: pathlib.Path) -> list[pathlib.Path]:
    """Sign every notebook of :data:`TRUSTED_FOLDERS` under ``root`` with ``notary``; returns them.

    JupyterLab sanitises the HTML outputs of a notebook it does not trust: before a lecture is
    run, its animations (matplotlib's JavaScript player) would show a broken image and dead
    buttons. The course's configuration gives the server a notary that keeps its signatures in
    memory under a key made for the session, so trusting the course's files here writes nothing
    to disk and lasts until the server stops; notebooks elsewhere are untouched.
    """
    import nbformat

    signed = []
    for folder in TRUSTED_FOLDERS:
        for path in sorted((root / folder).glob("*.ipynb")):
            notary.sign(nbformat.read(path, as_version=4))
            signed.append(path)
    return signed


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "course_lib.lab"}]


def _load_jupyter_server_extension(serverapp) -> None:
    """Serve ``/course``: a redirect to :data:`LANDING` that keeps the query (the login token).

    The landing page needs a query of its own (``file-browser-path``), which JupyterLab's
    default URL cannot carry: the server would print ``...?file-browser-path=/?token=...`` as
    the address to paste, a link whose token the server does not see.
    """
    from jupyter_server.base.handlers import RedirectWithParams
    from jupyter_server.utils import url_path_join

    base = serverapp.base_url
    serverapp.web_app.add_handlers(".*$", [(url_path_join(base, START_PAGE), RedirectWithParams,
                                           {"url": url_path_join(base, LANDING), "permanent": False})])
    root = pathlib.Path(serverapp.root_dir)
    notary = serverapp.contents_manager.notary
    if is_course_root(root) and notary.db_file == ":memory:":
        signed = trust_course_notebooks(notary, root)
        serverapp.log.info("course_lib.lab: trusting the %d notebooks of %s for this session",
                           len(signed), ", ".join(f"{f}/" for f in TRUSTED_FOLDERS))


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    root = course_root()
    # Jupyter reads JUPYTER_CONFIG_PATH whenever it looks for config files, so setting it here,
    # before JupyterLab starts, is enough; kernels inherit it harmlessly
    os.environ.update(lab_environment(root))
    from jupyterlab.labapp import LabApp

    print(f"Opening the course at {root} (JupyterLab configuration: {root / CONFIG_DIR})", flush=True)
    LabApp.launch_instance(argv=args)


if __name__ == "__main__":
    main()
