"""Interactive explorers of the lectures, grouped by the lecture that introduces them.

Each explorer is a ``FigureExplorer``: controls above a matplotlib figure that is drawn
again whenever a control changes. Displayed in JupyterLab it is live; it also carries a
PNG of its current figure (and a quiz its question as HTML), which is what a static
export of the notebook (HTML, slides) shows in place of the live widget.
"""
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

__all__ = ['FigureExplorer', 'MultipleChoice', 'stretch_explorer', 'BASE_TITLE', 'MAPS', 'change_of_variables_explorer', 'scalar_flow', 'invertibility_explorer', 'matrix_explorer', 'PLANAR_LAYERS', 'RADIAL_LAYERS', 'stack_explorer', 'stack_layer', 'KnobConditioner', 'coupling_explorer', 'knob_coupling', 'made_explorer', 'channel_mixing_explorer', 'rotation_3d', 'OBJECTIVE_LABELS', 'kl_explorer', 'observed_rows_explorer', 'threshold_explorer', 'FLUX_FIELDS', 'MOVING_DENSITIES', 'continuity_explorer', 'euler_explorer', 'flux_box_explorer', 'path_explorer', 'hutchinson_explorer', 'trajectory_explorer', 'lipschitz_explorer', 'spline_explorer']
