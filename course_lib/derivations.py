"""The mathematics of the course as sympy: each derivation lists its steps and proves its claims.

Every function returns a :class:`Derivation`: ``steps`` (a sentence and a sympy
expression each, shown in a notebook by displaying the derivation or calling
``show()``) and ``claims`` (expressions that simplify to ``0`` or ``True`` exactly when
the claim holds). ``check()`` simplifies every claim and returns ``True`` when all hold.

    >>> d = log_normal()
    >>> d.check()
    True

Symbols follow the lectures: ``z`` latent, ``x = f(z)`` data, ``p(z, t)`` a density
moved by a vector field ``f(z, t)``, ``j = p f`` the probability flux (``J`` is kept for
Jacobians).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE

from .validation import CourseValueError, positive_int

__all__ = ["Step", "Derivation", "latex", "Shown", "change_of_variables_affine", "log_normal",
           "linear_map_determinant", "rotation_determinant", "triangular_determinant",
           "divergence", "divergence_is_trace", "continuity_equation", "log_density_ode",
           "linear_field_1d", "gaussian_linear_field", "DERIVATIONS"]


class _CourseLatexPrinter(LatexPrinter):
    """sympy's LaTeX, except that the derivative of a product or a sum keeps its operand in
    parentheses: ``\\frac{\\partial}{\\partial z_1}\\left(f_1 p\\right)``, never
    ``\\frac{\\partial}{\\partial z_1} f_1 p``, which reads as ``(df_1/dz_1) p``."""

    def _print_Derivative(self, expr):
        text = super()._print_Derivative(expr)
        if not isinstance(expr.expr, (sp.Mul, sp.Add)):
            return text
        is_neg = any(arg.could_extract_minus_sign() for arg in expr.args)
        operand = self.parenthesize(expr.expr, PRECEDENCE["Mul"], is_neg=is_neg, strict=True)
        if operand.startswith(r"\left(") or not text.endswith(operand):
            return text
        return f"{text[:len(text) - len(operand)]}\\left({self._print(expr.expr)}\\right)"


def latex(expr: sp.Basic) -> str:
    """The LaTeX of ``expr`` as the derivations display it."""
    return _CourseLatexPrinter().doprint(expr)


class Shown(sp.Symbol):
    """A symbol that stands for a piece of notation, printed as the LaTeX it is named by
    (sympy would read ``p_t(z_t)`` in a plain symbol's name as subscripts)."""

    def _latex(self, printer) -> str:
        return self.name


@dataclass
class Step:
    """One line of a derivation: what is done, and the expression it gives."""

    text: str
    expr: sp.Basic

    def _repr_markdown_(self) -> str:
        return f"{self.text}\n\n$$ {latex(self.expr)} $$"


@dataclass
class Derivation:
    """Steps to show and claims to prove; ``check()`` is the proof."""

    title: str
    steps: list[Step]
    claims: dict[str, sp.Basic] = field(default_factory=dict)

    def residuals(self) -> dict[str, sp.Basic]:
        """Each claim simplified: ``0`` or ``True`` where it holds."""
        return {name: sp.simplify(expr) for name, expr in self.claims.items()}

    def check(self) -> bool:
        """``True`` when every claim simplifies to ``0`` (or ``True``)."""
        return all(r == 0 or r is sp.true for r in self.residuals().values())

    def _repr_markdown_(self) -> str:
        lines = [f"**{self.title}**", ""]
        for i, step in enumerate(self.steps, 1):
            lines += [f"{i}. {step._repr_markdown_()}", ""]
        return "\n".join(lines)

    def show(self) -> None:
        """Display the steps: rendered in a notebook, as pretty-printed text elsewhere."""
        try:
            from IPython import get_ipython
            from IPython.display import Markdown, display
        except ImportError:
            get_ipython = lambda: None  # noqa: E731
        if get_ipython() is not None:
            display(Markdown(self._repr_markdown_()))
        else:
            print(self.title)
            for i, step in enumerate(self.steps, 1):
                print(f"{i}. {step.text}\n{sp.pretty(step.expr)}\n")


def _eq(lhs, rhs) -> sp.Basic:
    """An equation kept as written, for display (sympy would otherwise decide it)."""
    return sp.Eq(lhs, rhs, evaluate=False)


def _std_normal(u: sp.Expr) -> sp.Expr:
    return sp.exp(-u ** 2 / 2) / sp.sqrt(2 * sp.pi)


def _normal(x: sp.Expr, mean: sp.Expr, std: sp.Expr) -> sp.Expr:
    return _std_normal((x - mean) / std) / std


# -- the change of variables in 1D -------------------------------------------------------

def change_of_variables_affine(a=None, b=None) -> Derivation:
    """``z ~ N(0, 1)`` and ``x = a z + b`` give ``x ~ N(b, a^2)``.

    ``a = 2, b = 3`` is the lecture's example: ``N(3, 4)``.
    """
    a = sp.Symbol("a", real=True, nonzero=True) if a is None else sp.sympify(a)
    b = sp.Symbol("b", real=True) if b is None else sp.sympify(b)
    x, z = sp.symbols("x z", real=True)
    z_of_x = sp.solve(_eq(x, a * z + b), z)[0]
    dz_dx = sp.diff(z_of_x, x)
    p_x = _std_normal(z_of_x) * sp.Abs(dz_dx)
    target = _normal(x, b, sp.Abs(a))
    sigma = sp.Symbol("sigma", positive=True)  # stands for |a|
    steps = [
        Step("The map and its inverse", _eq(z, z_of_x)),
        Step("Derivative of the inverse", _eq(sp.Symbol(r"\frac{dz}{dx}"), dz_dx)),
        Step("Change of variables, $p_X(x) = p_Z(f^{-1}(x))\\,|df^{-1}/dx|$",
             _eq(sp.Function("p_X")(x), p_x)),
        Step("This is the normal density with mean $b$ and variance $a^2$",
             _eq(sp.Function("p_X")(x), target)),
    ]
    claims = {"p_X is N(b, a^2)": p_x - target,
              "N(b, sigma^2) integrates to 1":
                  sp.integrate(_normal(x, b, sigma), (x, -sp.oo, sp.oo)) - 1}
    return Derivation("Affine map of a standard normal", steps, claims)


def log_normal() -> Derivation:
    """``x = exp(z)``, ``z ~ N(0, 1)``: the log-normal ``p_X(x) = phi(ln x) / x``, total mass 1."""
    x = sp.Symbol("x", positive=True)
    z = sp.Symbol("z", real=True)
    p_x = _std_normal(sp.log(x)) * sp.Abs(sp.diff(sp.log(x), x))
    total = sp.Integral(p_x, (x, 0, sp.oo))
    substituted = total.transform(x, sp.exp(z))
    lognormal = sp.exp(-sp.log(x) ** 2 / 2) / (x * sp.sqrt(2 * sp.pi))
    steps = [
        Step("The map $x = e^z$ has inverse $z = \\ln x$, defined for $x > 0$",
             _eq(sp.Symbol(r"\frac{dz}{dx}"), sp.diff(sp.log(x), x))),
        Step("Change of variables: the log-normal density", _eq(sp.Function("p_X")(x), p_x)),
        Step("Total mass", total),
        Step("Substituting $x = e^z$, $dx = e^z dz$ gives back the normal integral", substituted),
        Step("which is 1", _eq(total, substituted.doit())),
    ]
    claims = {"p_X is the log-normal density": p_x - lognormal,
              "p_X integrates to 1": substituted.doit() - 1}
    return Derivation("The log-normal from x = exp(z)", steps, claims)


# -- determinants of the course's examples -------------------------------------------------

def linear_map_determinant() -> Derivation:
    """``J = [[3, 1], [0, 2]]``: every area is multiplied by ``det J = 6``."""
    J = sp.Matrix([[3, 1], [0, 2]])
    u, v = sp.symbols("u v", positive=True)
    square = sp.Matrix([[u, 0], [0, v]])  # columns: the sides of a u-by-v rectangle
    image_area = sp.Abs((J * square).det())
    steps = [Step("The Jacobian of the linear map $x = Jz$", J),
             Step("Its determinant", _eq(sp.Symbol(r"\det J"), J.det())),
             Step("A $u \\times v$ rectangle is mapped to a parallelogram of area", image_area)]
    claims = {"det J = 6": J.det() - 6, "area scales by 6": image_area - 6 * u * v}
    return Derivation("Determinant of a linear map", steps, claims)


def rotation_determinant() -> Derivation:
    """A rotation preserves areas: ``det R(theta) = 1``, so its log-determinant is 0."""
    theta = sp.Symbol("theta", real=True)
    R = sp.Matrix([[sp.cos(theta), -sp.sin(theta)], [sp.sin(theta), sp.cos(theta)]])
    steps = [Step("A rotation by $\\theta$", R),
             Step("Its determinant", _eq(sp.Symbol(r"\det R"), R.det())),
             Step("$\\cos^2 + \\sin^2 = 1$", _eq(sp.Symbol(r"\det R"), sp.simplify(R.det())))]
    return Derivation("Rotations preserve volume", steps, {"det R = 1": R.det() - 1})


def triangular_determinant(n: int = 3) -> Derivation:
    """A triangular Jacobian (coupling and autoregressive flows) has ``det = prod_i J_ii``."""
    J = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"J_{i + 1}{j + 1}") if j <= i else 0)
    diagonal = sp.Mul(*[J[i, i] for i in range(n)])
    steps = [Step("A lower-triangular Jacobian", J),
             Step("Its determinant is the product of the diagonal",
                  _eq(sp.Symbol(r"\det J"), J.det()))]
    return Derivation("Triangular Jacobians", steps, {"det J = prod J_ii": J.det() - diagonal})


# -- divergence and trace ---------------------------------------------------------------------

def divergence(f: Sequence[sp.Expr], z: Sequence[sp.Symbol]) -> sp.Expr:
    """``div f = sum_i d f_i / d z_i``, from the components of ``f`` (its definition)."""
    if len(f) != len(z):
        raise CourseValueError(f"divergence: expected a field with one component per coordinate, "
                               f"got {len(f)} components and {len(z)} coordinates")
    return sp.Add(*[sp.diff(f[i], z[i]) for i in range(len(z))])


def _general_field(dim: int) -> tuple[sp.Matrix, tuple[sp.Symbol, ...]]:
    """``f(z) = (f_1(z), ..., f_n(z))`` with every component an unknown function of every
    coordinate: nothing is assumed about the field but differentiability."""
    z = sp.symbols(f"z_1:{dim + 1}", real=True)
    return sp.Matrix([sp.Function(f"f_{i + 1}")(*z) for i in range(dim)]), z


def _trace_residuals(f: sp.Matrix, z, div: sp.Expr) -> dict[str, sp.Expr]:
    """``tr J - div`` and ``d/de det(I + e J)|_0 - div`` with ``J`` sympy's Jacobian of ``f``."""
    J = f.jacobian(z)
    return {"div f = tr(df/dz)": J.trace() - div,
            "tr(df/dz) = d/de det(I + e df/dz) at e = 0": _volume_rate(J) - div}


def _volume_rate(J: sp.Matrix) -> sp.Expr:
    """``d/de det(I + e J)`` at ``e = 0``: how fast ``z + e f(z)`` changes volumes."""
    eps = sp.Symbol("epsilon")
    return sp.expand(sp.diff((sp.eye(J.shape[0]) + eps * J).det(), eps).subs(eps, 0))


Definition = Callable[[sp.Matrix, Sequence[sp.Symbol]], sp.Expr]


def divergence_is_trace(dim: int = 3, definition: Definition | None = None) -> Derivation:
    """``div f = tr(df/dz)`` for a general field ``f: R^n -> R^n``.

    The two sides come from different places: the divergence from the components of ``f``
    (``definition``, by default :func:`divergence`, ``sum_i d f_i / d z_i``), the trace from the
    Jacobian matrix that sympy's ``jacobian`` builds (entries ``d f_i / d z_j``), both as the sum of
    its diagonal and as the rate at which ``z + e f(z)`` changes volumes,
    ``d/de det(I + e J)`` at ``e = 0``. Each component of ``f`` is an unknown function of every
    coordinate, so the claim holds for every differentiable field; a wrong ``definition``
    makes ``check()`` fail.
    """
    dim = positive_int(dim, "dim", "divergence_is_trace")
    f, z = _general_field(dim)
    div = (definition or divergence)(f, z)
    J = f.jacobian(z)
    div_symbol = sp.Symbol(r"\nabla \cdot f")
    steps = [Step("A general field: every component depends on every coordinate",
                  _eq(sp.Symbol("f"), f)),
             Step("Its divergence, from the components", _eq(div_symbol, div)),
             Step("Its Jacobian, $J_{ij} = \\partial f_i / \\partial z_j$", J),
             Step("The trace of $J$ sums its diagonal", _eq(sp.Symbol(r"\operatorname{tr} J"),
                                                           J.trace())),
             Step("The rate at which $z + \\epsilon f(z)$ changes volumes, "
                  "$\\frac{d}{d\\epsilon} \\det(I + \\epsilon J)$ at $\\epsilon = 0$, expanded",
                  _volume_rate(J))]
    return Derivation(f"The divergence is the trace of the Jacobian ({dim}D)", steps,
                      _trace_residuals(f, z, div))


# -- the continuity equation -----------------------------------------------------------------

def _box_2d():
    z1, z2, t = sp.symbols("z_1 z_2 t", real=True)
    a1, b1, a2, b2 = sp.symbols("a_1 b_1 a_2 b_2", real=True)
    return (z1, z2), t, (a1, b1, a2, b2)


def _div_as_written(v, z) -> sp.Expr:
    """``sum_i dv_i/dz_i`` left unevaluated, so that it displays as written."""
    return sp.Add(*[sp.Derivative(v[i], z[i], evaluate=False) for i in range(len(z))])


def _outflow(flux, z, V) -> sp.Expr:
    """``oint J . n dS`` over the boundary of the box ``V``, side by side."""
    (z1, a1, b1), (z2, a2, b2) = V
    # outward normals: +z1 on the right side, -z1 on the left, +z2 on top, -z2 at the bottom
    return (sp.Integral(flux[0].subs(z1, b1) - flux[0].subs(z1, a1), (z2, a2, b2))
            + sp.Integral(flux[1].subs(z2, b2) - flux[1].subs(z2, a2), (z1, a1, b1)))


def continuity_equation() -> Derivation:
    """``dp/dt + div(p f) = 0``, from conservation of mass in every box ``V`` and the
    divergence theorem."""
    (z1, z2), t, (a1, b1, a2, b2) = _box_2d()
    p = sp.Function("p")(z1, z2, t)
    f = sp.Matrix([sp.Function("f_1")(z1, z2, t), sp.Function("f_2")(z1, z2, t)])
    flux = p * f
    V = ((z1, a1, b1), (z2, a2, b2))
    outflow = _outflow(flux, (z1, z2), V)
    div_flux = _div_as_written(flux, (z1, z2))
    volume = sp.Integral(div_flux, *V)
    # the divergence theorem is proved for any smooth flux j, p f being one of them;
    # Fubini lets each partial derivative be integrated first along its own axis
    j = [sp.Function("j_1")(z1, z2, t), sp.Function("j_2")(z1, z2, t)]
    volume_by_axis = (sp.Integral(sp.diff(j[0], z1), (z1, a1, b1), (z2, a2, b2))
                      + sp.Integral(sp.diff(j[1], z2), (z2, a2, b2), (z1, a1, b1)))
    g = sp.Function("g")(z1, z2)  # stands for dp/dt + div(p f) at a fixed time
    every_box = sp.Derivative(sp.Integral(g, *V), b1, b2)
    P_V = sp.Function("P_V")(t)
    steps = [
        Step("Probability flux: the mass per unit length and time moving through a point",
             _eq(sp.Symbol("j"), flux)),
        Step("Mass in the region $V = [a_1, b_1] \\times [a_2, b_2]$",
             _eq(P_V, sp.Integral(p, *V))),
        Step("Its rate of change", _eq(sp.Derivative(P_V, t), sp.Integral(sp.diff(p, t), *V))),
        Step("Net outflow through the boundary $\\partial V$, $\\oint (p f) \\cdot n \\, dS$",
             outflow),
        Step("Conservation of mass: what $V$ loses is what flows out",
             _eq(sp.Integral(sp.diff(p, t), *V), -outflow)),
        Step("Divergence theorem: the surface integral becomes a volume integral",
             _eq(outflow, volume)),
        Step("Together", _eq(sp.Integral(sp.diff(p, t) + div_flux, *V), 0)),
        Step("This holds for every $V$. Writing $g$ for the integrand, differentiating in the "
             "corner $(b_1, b_2)$ recovers $g$ there, so $g = 0$ at every point",
             _eq(every_box, every_box.doit())),
        Step("The continuity equation", _eq(sp.diff(p, t) + div_flux, 0)),
    ]
    claims = {"divergence theorem on a box":
                  _outflow(j, (z1, z2), V).doit() - volume_by_axis.doit(),
              "a box integral vanishing for every box has a zero integrand":
                  every_box.doit() - g.subs({z1: b1, z2: b2})}
    return Derivation("The continuity equation", steps, claims)


def log_density_ode() -> Derivation:
    """Along ``dz/dt = f``: ``d/dt log p(z_t, t) = -div f = -tr(df/dz)``, through the log-density
    at fixed places (the Eulerian form ``d_t log p = -div f - f . grad log p``)."""
    (z1, z2), t, _ = _box_2d()
    z = (z1, z2)
    p = sp.Function("p")(z1, z2, t)
    f = sp.Matrix([sp.Function("f_1")(z1, z2, t), sp.Function("f_2")(z1, z2, t)])
    path = [sp.Function("z_1")(t), sp.Function("z_2")(t)]
    on_path = dict(zip(z, path))
    # sympy's own chain rule along the path, then read back at the point z
    total = sp.diff(sp.log(p.subs(on_path)), t)
    total = total.subs({sp.Derivative(path[i], t): f[i].subs(on_path) for i in range(2)})
    total = total.subs(dict(zip(path, z))).doit()
    grad_log_p = sp.Matrix([sp.diff(sp.log(p), zi) for zi in z])
    spelled_out = sp.diff(p, t) / p + grad_log_p.dot(f)
    div_f = divergence(f, z)
    product_rule = p * div_f + f.dot(sp.Matrix([sp.diff(p, zi) for zi in z]))
    continuity = {sp.Derivative(p, t): -divergence(p * f, z)}
    eulerian = -div_f - grad_log_p.dot(f)
    dlogp = Shown(r"\frac{d}{dt}\log p(z_t, t)")
    partial_log_p = Shown(r"\frac{\partial}{\partial t}\log p")
    velocity = sp.Matrix([sp.Derivative(zi, t) for zi in path])
    steps = [
        Step("A particle follows the field", _eq(velocity, f.subs(on_path))),
        Step("Product rule for the divergence of the flux",
             _eq(_div_as_written(p * f, z), product_rule)),
        Step("The continuity equation gives $\\partial p / \\partial t$",
             _eq(sp.diff(p, t), -product_rule)),
        Step("Divided by $p$: the log-density at a fixed place (Eulerian form), "
             "$\\partial_t \\log p = -\\nabla \\cdot f - f \\cdot \\nabla \\log p$",
             _eq(partial_log_p, eulerian)),
        Step("Total derivative of the log-density along the path (chain rule): "
             "$\\frac{d}{dt}\\log p(z_t, t) = \\partial_t \\log p + f \\cdot \\nabla \\log p$",
             _eq(dlogp, spelled_out)),
        Step("Substituting the Eulerian form, the gradient terms cancel",
             _eq(dlogp, Shown(r"\left(-\nabla \cdot f - f \cdot \nabla \log p\right)"
                              r" + f \cdot \nabla \log p"))),
        Step("What remains", _eq(dlogp, -div_f)),
        Step("The divergence is the trace of the Jacobian",
             _eq(div_f, sp.Trace(sp.ImmutableMatrix(f.jacobian(z))))),
    ]
    claims = {"total derivative = dp/dt / p + grad log p . f": total - spelled_out,
              "div(p f) = p div f + f . grad p": divergence(p * f, z) - product_rule,
              "d/dt log p = -div f - f . grad log p at a fixed place":
                  sp.diff(sp.log(p), t).subs(continuity) - eulerian,
              "d/dt log p = -div f": spelled_out.subs(continuity) + div_f,
              # proved for this field as in divergence_is_trace: the Jacobian's trace is
              # the divergence from the components
              "div f = tr(df/dz)": _trace_residuals(f, z, div_f)["div f = tr(df/dz)"]}
    return Derivation("The log-density ODE", steps, claims)


# -- cases with known answers ------------------------------------------------------------------

def linear_field_1d() -> Derivation:
    """``dz/dt = a z``: ``d/dt log p = -a``, confirmed on the exact flow ``z_t = e^{at} z_0``."""
    z, z0, t, a = sp.symbols("z z_0 t a", real=True)
    p0 = sp.Function("p_0")
    f = a * z
    # the 1D change of variables for z = e^{at} z_0, any initial density p_0
    p_t = p0(z * sp.exp(-a * t)) * sp.exp(-a * t)
    z_t = z0 * sp.exp(a * t)
    log_p_along = sp.log(p_t.subs(z, z_t))
    steps = [
        Step("The field and its divergence", _eq(sp.Symbol(r"\frac{\partial f}{\partial z}"),
                                                   sp.diff(f, z))),
        Step("So the log-density ODE gives", _eq(sp.Symbol(r"\frac{d}{dt}\log p(z_t)"),
                                                   -sp.diff(f, z))),
        Step("The exact flow $z_t = e^{at} z_0$ carries $p_0$ to", _eq(sp.Function("p_t")(z), p_t)),
        Step("Along a path", _eq(Shown(r"\log p_t(z_t)"), sp.expand_log(log_p_along,
                                                                              force=True))),
    ]
    claims = {"p_t solves the continuity equation": sp.diff(p_t, t) + sp.diff(p_t * f, z),
              "d/dt log p_t(z_t) = -a": sp.diff(log_p_along, t) + a}
    return Derivation("The 1D linear field dz/dt = a z", steps, claims)


def gaussian_linear_field(dim: int = 2) -> Derivation:
    """A Gaussian ``N(m(t), S(t))`` carried by ``f = A z + c`` solves the continuity equation when
    ``dm/dt = A m + c`` and ``dS/dt = A S + S A^T``."""
    if dim not in (1, 2):
        raise CourseValueError(f"gaussian_linear_field: dim must be 1 or 2, got {dim!r}")
    t = sp.Symbol("t", real=True)
    z = sp.Matrix(sp.symbols(f"z_1:{dim + 1}", real=True))
    A = sp.Matrix(dim, dim, lambda i, j: sp.Symbol(f"a_{i + 1}{j + 1}", real=True))
    c = sp.Matrix(sp.symbols(f"c_1:{dim + 1}", real=True))
    m = sp.Matrix([sp.Function(f"m_{i + 1}")(t) for i in range(dim)])
    S = sp.Matrix(dim, dim, lambda i, j: sp.Function(f"S_{min(i, j) + 1}{max(i, j) + 1}")(t))
    r = z - m
    p = sp.exp(-(r.T * S.inv() * r)[0] / 2) / sp.sqrt((2 * sp.pi) ** dim * S.det())
    f = A * z + c
    dm, dS = A * m + c, A * S + S * A.T
    moments = {sp.Derivative(m[i], t): dm[i] for i in range(dim)}
    moments.update({sp.Derivative(S[i, j], t): dS[i, j] for i in range(dim) for j in range(i, dim)})
    residual = sp.diff(p, t) + divergence(p * f, list(z))
    steps = [
        Step("The linear field", _eq(sp.Symbol("f"), f)),
        Step("The Gaussian density", _eq(sp.Symbol("p"), p)),
        Step("Its mean follows the field", _eq(sp.Derivative(sp.Symbol("m"), t), dm)),
        Step("Its covariance is stretched by the field on both sides",
             _eq(sp.Derivative(sp.Symbol("S"), t), dS)),
        Step("With these moments the continuity residual, divided by $p$, simplifies to 0 "
             "(``check()`` proves it)",
             _eq(sp.Symbol(r"\frac{\partial_t p + \nabla \cdot (p f)}{p}"), 0)),
    ]
    return Derivation(f"A Gaussian carried by a linear field ({dim}D)", steps,
                      {"continuity residual is 0": residual.subs(moments) / p})


DERIVATIONS = {
    "change_of_variables_affine": change_of_variables_affine,
    "log_normal": log_normal,
    "linear_map_determinant": linear_map_determinant,
    "rotation_determinant": rotation_determinant,
    "triangular_determinant": triangular_determinant,
    "divergence_is_trace_2d": lambda: divergence_is_trace(2),
    "divergence_is_trace_3d": lambda: divergence_is_trace(3),
    "continuity_equation": continuity_equation,
    "log_density_ode": log_density_ode,
    "linear_field_1d": linear_field_1d,
    "gaussian_linear_field_1d": lambda: gaussian_linear_field(1),
    "gaussian_linear_field_2d": lambda: gaussian_linear_field(2),
}
