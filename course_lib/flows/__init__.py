"""Every flow the course teaches. A flow maps latent to data, ``x = f(z)``; both
``forward`` and ``inverse`` return ``(output, log|det J|)``."""
from .base import Compose, Flow, FlowInputError, Inverse, initialize
from .elementwise import Affine, Exp, Sigmoid
from .coupling import AdditiveCoupling, AffineCoupling, affine_coupling_step
from .autoregressive import IAF, MADE, MAF
from .residual import ResidualFlow
from .linear import LULinear, Permutation, Reverse
from .planar import Planar, planar
from .radial import Radial, radial
from .glow import ActNorm, InvConv1x1, LogitTransform, MultiScale, Squeeze, glow_step
from .splines import RQSAutoregressive, RQSCoupling, RQSpline, rq_spline

__all__ = ["Flow", "FlowInputError", "Compose", "Inverse", "initialize"]
__all__ += ["Affine", "Exp", "Sigmoid"]
__all__ += ["AdditiveCoupling", "AffineCoupling", "affine_coupling_step"]
__all__ += ["MADE", "MAF", "IAF"]
__all__ += ["ResidualFlow"]
__all__ += ["Permutation", "Reverse", "LULinear", "Planar", "planar", "Radial", "radial"]
__all__ += ["ActNorm", "InvConv1x1", "Squeeze", "MultiScale", "LogitTransform", "glow_step"]
__all__ += ["RQSpline", "RQSCoupling", "RQSAutoregressive", "rq_spline"]
