"""Interactive explorers of the lectures, grouped by the lecture that introduces them.

Each explorer is a ``FigureExplorer``: controls above a matplotlib figure that is drawn
again whenever a control changes. Displayed in JupyterLab it is live; it also carries a
PNG of its current figure (and a quiz its question as HTML), which is what a static
export of the notebook (HTML, slides) shows in place of the live widget.
"""
from . import (common, start_here, change_of_variables, geometry, composition, coupling,
               autoregressive, glow, kl, applications, continuity, flow_matching,
               continuous, splines)
from .common import *  # noqa: F401,F403
from .start_here import *  # noqa: F401,F403
from .change_of_variables import *  # noqa: F401,F403
from .geometry import *  # noqa: F401,F403
from .composition import *  # noqa: F401,F403
from .coupling import *  # noqa: F401,F403
from .autoregressive import *  # noqa: F401,F403
from .glow import *  # noqa: F401,F403
from .kl import *  # noqa: F401,F403
from .applications import *  # noqa: F401,F403
from .continuity import *  # noqa: F401,F403
from .flow_matching import *  # noqa: F401,F403
from .continuous import *  # noqa: F401,F403
from .splines import *  # noqa: F401,F403

# each module lists its public names once; the package exports all of them
_MODULES = (common, start_here, change_of_variables, geometry, composition, coupling,
            autoregressive, glow, kl, applications, continuity, flow_matching, continuous,
            splines)
__all__ = [name for module in _MODULES for name in module.__all__]
