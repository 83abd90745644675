"""The explorers build without a browser, offer the advertised controls, draw the densities the
change of variables predicts, and redraw when a control moves; the quiz gives feedback."""
import base64

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402
from scipy.special import logit  # noqa: E402

from course_lib.widgets import (MultipleChoice, change_of_variables_explorer,  # noqa: E402
                                stretch_explorer)

WIDGET = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def explorer():
    return change_of_variables_explorer(samples=2000)


@pytest.fixture(autouse=True)
def reset(explorer):
    yield
    explorer.set(kind="affine", a=2.0, b=3.0, drop_absolute_value=False)


def formula_line(explorer):
    (line,) = [l for l in explorer.figure.axes[1].lines if l.get_label() == "formula"]
    return line.get_xdata(), line.get_ydata()


def expected_density(kind, a, b, x):
    if kind == "affine":
        return stats.norm(b, abs(a)).pdf(x)
    if kind == "exp":
        return stats.lognorm(s=abs(a), scale=np.exp(b)).pdf(x)
    return stats.norm(b, abs(a)).pdf(logit(x)) / (x * (1 - x))


def test_explorer_offers_sliders_for_a_and_b_and_a_choice_of_map(explorer):
    a, b = explorer.controls["a"], explorer.controls["b"]
    assert (a.min, a.max, a.value) == (-3.0, 3.0, 2.0)
    assert (b.min, b.max, b.value) == (-5.0, 5.0, 3.0)
    assert set(explorer.controls["kind"].options[i][1] for i in range(3)) == {"affine", "exp",
                                                                               "sigmoid"}


def test_explorer_draws_a_first_figure_when_built(explorer):
    assert explorer.png.startswith(b"\x89PNG")
    assert len(explorer.figure.axes) == 2


def test_explorer_starts_with_the_base_density_on_the_left(explorer):
    (line,) = [l for l in explorer.figure.axes[0].lines if l.get_label() == "formula"]
    assert np.allclose(line.get_ydata(), stats.norm.pdf(line.get_xdata()), atol=1e-12)


@pytest.mark.parametrize("kind, a, b", [("affine", -1.5, 0.5), ("exp", 0.7, 0.3),
                                        ("exp", -1.0, 0.0), ("sigmoid", 1.2, -0.4)])
def test_explorer_draws_the_pushed_density_of_the_chosen_map(explorer, kind, a, b):
    explorer.set(kind=kind, a=a, b=b)
    x, y = formula_line(explorer)
    assert np.allclose(y, expected_density(kind, a, b, x), rtol=1e-9, atol=1e-12)


def test_moving_a_slider_redraws_the_figure(explorer):
    x_before, y_before = formula_line(explorer)
    png_before = explorer.png
    explorer.controls["b"].value = -1.0
    x_after, y_after = formula_line(explorer)
    assert np.allclose(x_after, x_before - 4.0)
    assert np.allclose(y_after, y_before)
    assert explorer.png != png_before


def test_dropping_the_absolute_value_of_a_decreasing_map_draws_a_negative_density(explorer):
    explorer.set(a=-2.0, drop_absolute_value=True)
    (signed,) = [l for l in explorer.figure.axes[1].lines if l.get_label() == "without |.|"]
    _, density = formula_line(explorer)
    assert np.allclose(signed.get_ydata(), -density)


def test_zero_scale_shows_no_density_and_says_why(explorer):
    explorer.controls["a"].value = 0.0
    right = explorer.figure.axes[1]
    assert not right.lines
    assert "not invertible" in right.texts[0].get_text()


def test_setting_several_controls_redraws_once_with_all_of_them(explorer):
    explorer.set(kind="exp", a=-1.0, b=0.5)
    assert {name: explorer.controls[name].value for name in ("kind", "a", "b")} == {
        "kind": "exp", "a": -1.0, "b": 0.5}
    x, y = formula_line(explorer)
    assert np.allclose(y, expected_density("exp", -1.0, 0.5, x), rtol=1e-9, atol=1e-12)


def test_setting_an_unknown_control_is_refused(explorer):
    with pytest.raises(ValueError, match="expected controls among"):
        explorer.set(scale=2.0)


def test_a_static_picture_travels_with_the_widget(explorer):
    bundle = explorer._repr_mimebundle_()
    assert WIDGET in bundle
    assert base64.b64decode(bundle["image/png"]) == explorer.png


def test_stretch_explorer_slider_stays_positive():
    slider = stretch_explorer().controls["a"]
    assert slider.min > 0 and slider.max == 3.0


@pytest.mark.parametrize("a", [0.5, 2.5])
def test_stretch_explorer_draws_the_stretched_normal(a):
    explorer = stretch_explorer()
    explorer.controls["a"].value = a
    (pushed,) = [l for l in explorer.figure.axes[0].lines if "p_X" in l.get_label()]
    assert np.allclose(pushed.get_ydata(), stats.norm(0, a).pdf(pushed.get_xdata()), atol=1e-12)


def quiz():
    return MultipleChoice("Which is right?", ["this one", "that one"], answer=1,
                          explanations=["because of A", "because of B"])


def test_quiz_says_nothing_before_an_answer_is_picked():
    q = quiz()
    assert q.correct is None and q.feedback.value == ""


def test_quiz_explains_a_wrong_pick():
    q = quiz()
    q.choices.value = "this one"
    assert q.correct is False
    assert "Not quite" in q.feedback.value and "because of A" in q.feedback.value


def test_quiz_confirms_the_right_pick():
    q = quiz()
    q.choices.value = "that one"
    assert q.correct is True
    assert "Correct" in q.feedback.value and "because of B" in q.feedback.value


def test_quiz_static_copy_hides_the_answer_in_a_details_block():
    html = quiz()._repr_mimebundle_()["text/html"]
    assert "<details>" in html and "B. because of B" in html.split("<details>")[1]


def test_quiz_needs_one_explanation_per_option():
    with pytest.raises(ValueError, match="one explanation per option"):
        MultipleChoice("?", ["x", "y"], answer=0, explanations=["only one"])


@pytest.mark.parametrize("a", [0.25, 1.0, 2.0, 3.0])
def test_stretch_explorer_y_axis_fits_the_taller_curve(a):
    explorer = stretch_explorer()
    explorer.controls["a"].value = a
    ax = explorer.figure.axes[0]
    tallest = max(stats.norm.pdf(0.0), stats.norm(0, a).pdf(0.0))
    bottom, top = ax.get_ylim()
    assert bottom == 0 and tallest < top < 1.3 * tallest


def test_explorer_sliders_start_strictly_inside_their_range(explorer):
    for name in ("a", "b"):
        slider = explorer.controls[name]
        assert slider.min < slider.value < slider.max, name
