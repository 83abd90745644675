"""The course map, walked: each lecture teaches the seed topics the map assigns to it.

A topic counts as present when its pattern occurs in the lecture's Markdown (headings and
prose) or code. Every lecture notebook in ``notebooks/`` must have an entry here, and every
lecture listed here that exists is checked, so removing a topic from a lecture fails the build.
"""
import pathlib
import re

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
LECTURES = ["00_start_here", "01_change_of_variables_1d", "02_jacobian_geometry", "03_composing_flows",
            "04_coupling_layers", "05_glow", "06_autoregressive_flows", "07_spline_and_residual_flows",
            "08_forward_vs_reverse_kl", "09_continuity_equation", "10_continuous_flows",
            "11_flow_matching", "12_applications"]

TOPICS = {
    "00_start_here": ["worksheet", "check", "widget", r"anomaly detection", r"inverse problem",
                      r"sampling", r"density estimation", r"diffusion"],
    "01_change_of_variables_1d": [r"change of variables", r"2z ?\+ ?3", r"log-?normal", r"absolute value",
                                  r"uniform", r"1/3", r"1/2", r"az ?\+ ?b", r"p_z\(z\)\s*\\?,?\s*dz",
                                  r"decreasing"],
    "02_jacobian_geometry": [r"determinant", r"parallelogram", r"lineari[sz]", r"expan", r"compress",
                             r"collaps", r"0\.5 ?z", r"pushforward|push-forward", r"diffeomorphism",
                             r"group"],
    "03_composing_flows": [r"compos", r"chain rule", r"log-likelihood", r"forward kl",
                           r"maximum likelihood|\bmle\b", r"planar", r"radial",
                           r"matrix determinant lemma", r"0\.580", r"invertib"],
    "04_coupling_layers": [r"\bnice\b", r"realnvp", r"additive", r"volume[- ]preserving", r"triangular",
                           r"mask", r"6\.946", r"non-?zero", r"bound", r"pitfall"],
    "05_glow": [r"actnorm", r"data-dependent", r"1 ?(x|\\times) ?1", r"\blu\b", r"multi-?scale", r"squeeze",
                r"dequantiz", r"bits ?(per|/) ?dim", r"checkerboard", r"228\.5", r"rotation"],
    "06_autoregressive_flows": [r"\bmade\b", r"mask", r"\bmaf\b", r"\biaf\b", r"triangular",
                                r"autoregressive", r"sequential", r"fast"],
    "07_spline_and_residual_flows": [r"spline", r"rational[- ]quadratic", r"monoton", r"tail",
                                     r"residual", r"lipschitz", r"power[- ]series", r"cost"],
    "08_forward_vs_reverse_kl": [r"forward kl", r"reverse kl", r"mass[- ]covering", r"mode[- ]seeking",
                                 r"posterior", r"effective sample size", r"negative", r"unnormali[sz]ed"],
    "09_continuity_equation": [r"euler", r"flux", r"divergence theorem", r"continuity equation",
                               r"log[- ]density", r"dz/dt ?= ?a ?z|\\frac\{dz\}\{dt\} ?= ?a ?z",
                               r"layers", r"conserv"],
    "10_continuous_flows": [r"torchdiffeq|odeint", r"augmented", r"hutchinson", r"adjoint", r"ffjord",
                            r"trace"],
    "11_flow_matching": [r"flow matching", r"straight", r"diffusion", r"simulation[- ]free", r"entropy"],
    "12_applications": [r"anomaly", r"auroc", r"bayesian", r"\bvae\b", r"elbo", r"\bgan\b", r"diffusion",
                        r"autoregressive"],
}


def existing():
    return sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def text_of(stem: str) -> str:
    nb = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    return "\n".join(c.source for c in nb.cells).lower()


def test_every_lecture_notebook_is_on_the_map():
    unknown = sorted(set(existing()) - set(LECTURES))
    assert not unknown, f"lecture notebooks with names not in the course map: {unknown}"


def test_every_lecture_on_the_map_exists():
    missing = sorted(set(LECTURES) - set(existing()))
    assert not missing, f"lectures of the course map missing from notebooks/: {missing}"


@pytest.mark.parametrize("stem", LECTURES)
def test_lecture_teaches_its_topics(stem):
    text = text_of(stem)
    missing = [t for t in TOPICS[stem] if not re.search(t, text)]
    assert not missing, f"{stem} does not teach: {missing}"


def test_start_here_links_every_lecture():
    text = text_of("00_start_here")
    missing = [s for s in LECTURES[1:] if f"{s}.ipynb" not in text]
    assert not missing, f"00_start_here does not link: {missing}"
