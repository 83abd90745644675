"""Figures of the lectures, grouped by the lecture that introduces them.

Every function draws into ``ax`` (or ``axes``) when given one, so the same picture can
live in a notebook cell or inside a widget, and returns the ``Figure``. Without ``ax`` it
opens a new pyplot figure, which the notebook's inline backend shows when the cell ends.

Densities on a grid are evaluated without gradients; a 1D model is anything with
``log_prob`` on batches of shape ``(batch, 1)``, such as ``NormalizingFlow(1, [...])``.
"""
from . import (common, change_of_variables, geometry, composition, coupling,
               autoregressive, glow, kl, continuity, applications, flow_matching,
               continuous, splines)
from .common import *  # noqa: F401,F403
from .change_of_variables import *  # noqa: F401,F403
from .geometry import *  # noqa: F401,F403
from .composition import *  # noqa: F401,F403
from .coupling import *  # noqa: F401,F403
from .autoregressive import *  # noqa: F401,F403
from .glow import *  # noqa: F401,F403
from .kl import *  # noqa: F401,F403
from .continuity import *  # noqa: F401,F403
from .applications import *  # noqa: F401,F403
from .flow_matching import *  # noqa: F401,F403
from .continuous import *  # noqa: F401,F403
from .splines import *  # noqa: F401,F403

# each module lists its public names once; the package exports all of them
_MODULES = (common, change_of_variables, geometry, composition, coupling, autoregressive, glow,
            kl, continuity, applications, flow_matching, continuous, splines)
__all__ = [name for module in _MODULES for name in module.__all__]
