"""JupyterLab as the course opens it: ``python -m course_lib.lab`` puts this folder first on
Jupyter's config path (``JUPYTER_CONFIG_PATH``). Plain ``jupyter lab`` does not read it.

The file browser's root is the course repository (``notebooks/``, ``exercises/`` and
``solutions/`` side by side), lecture 00 opens in front in a workspace of its own, and nothing
reaches the network: no news feed, no update check, an extension manager that only lists what is
installed. ``labconfig/page_config.json`` switches off the news prompt's plugin and the
extension manager's panel; ``labconfig/default_setting_overrides.json`` changes defaults only,
so a student's own JupyterLab settings still win. Options given on the command line win over
everything here.
"""
import pathlib

COURSE = pathlib.Path(__file__).resolve().parent.parent

c.ServerApp.root_dir = str(COURSE)  # noqa: F821 (``c`` is the config object Jupyter passes in)
# /course (served by course_lib.lab) redirects to lecture 00 in a workspace of the course's own,
# with the file browser at the root
c.ServerApp.jpserver_extensions.update({"course_lib.lab": True})  # noqa: F821
c.LabApp.default_url = "/course"  # noqa: F821
c.LabApp.news_url = None  # noqa: F821
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"  # noqa: F821
c.LabApp.extension_manager = "readonly"  # noqa: F821
