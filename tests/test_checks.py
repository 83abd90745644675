"""The checks themselves: every solution passes, typical wrong answers fail with the intended
hint, and no answer (a stub, a crash, a loop, a wrong type) can make a check raise."""
import importlib
import pathlib
import re
import time

import pytest
import torch

from course_lib import checks, worksheets
from course_lib.checks.core import check

SOURCES = worksheets.sources()
WRONG = {}
for path in sorted(pathlib.Path(__file__).parent.glob("wrong_answers_*.py")):
    WRONG.update(importlib.import_module(path.stem).WRONG)


def solution_namespace(src):
    """Run the solution's code cells, except the check calls, and return its names."""
    ns = {}
    for cell in worksheets.solution_notebook(src).cells:
        if cell.cell_type == "code" and "checks.ex" not in cell.source:
            exec(compile(cell.source, str(src), "exec"), ns)
    return ns


def check_calls(src):
    """(exercise id, answer name) for every check call in a worksheet."""
    text = src.read_text()
    return re.findall(r"checks\.(ex\d\d_\d+)\((\w+)\)", text)


CALLS = [(src, ex, name) for src in SOURCES for ex, name in check_calls(src)]


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_every_check_of_the_worksheet_is_called_in_it(src):
    called = [ex for ex, _ in check_calls(src)]
    assert called == checks.exercises_of(src.stem)
    assert 4 <= len(called) <= 8


@pytest.mark.parametrize("src,exercise,name", CALLS, ids=lambda v: getattr(v, "stem", v))
def test_the_solution_passes(src, exercise, name):
    result = getattr(checks, exercise)(solution_namespace(src)[name])
    assert result.status == "passed", result.message


def test_every_check_has_a_wrong_answer_that_must_fail():
    missing = sorted(set(checks.REGISTRY) - set(WRONG))
    assert not missing, f"checks without a wrong answer: {missing}"


@pytest.mark.parametrize("exercise,answer,hint",
                         [(ex, a, h) for ex, cases in sorted(WRONG.items()) for a, h in cases],
                         ids=lambda v: v if isinstance(v, str) and v.startswith("ex") else "")
def test_a_typical_wrong_answer_fails_with_its_hint(exercise, answer, hint):
    result = getattr(checks, exercise)(answer)
    assert result.status == "failed", result
    assert re.search(hint, result.message, re.I), result.message


@pytest.mark.parametrize("exercise", sorted(checks.REGISTRY))
def test_an_untouched_stub_is_not_attempted(exercise):
    def stub(*args, **kwargs):
        raise NotImplementedError()
    assert getattr(checks, exercise)(stub).status == "not attempted"
    assert getattr(checks, exercise)(None).status == "not attempted"


@pytest.mark.parametrize("exercise", sorted(checks.REGISTRY))
def test_an_answer_that_crashes_is_reported_not_raised(exercise):
    def crash(*args, **kwargs):
        return {}["missing key"]
    result = getattr(checks, exercise)(crash)
    assert result.status in ("error", "failed") and "KeyError" in result.message


@pytest.mark.parametrize("exercise", sorted(checks.REGISTRY))
def test_an_answer_of_the_wrong_type_fails_without_raising(exercise):
    result = getattr(checks, exercise)(lambda *args, **kwargs: "a string")
    assert result.status in ("failed", "error") and result.message


def test_a_looping_answer_is_stopped_by_the_time_limit():
    @check("ex99_1", "99_test", "a loop", seconds=0.5)
    def looping(answer):
        answer()

    def forever():
        while True:
            pass
    start = time.perf_counter()
    result = looping(forever)
    assert result.status == "error" and "stopped after" in result.message
    assert time.perf_counter() - start < 5
    checks.REGISTRY.pop("ex99_1")


def test_a_result_displays_as_html_and_carries_a_machine_readable_copy():
    result = checks.CheckResult("ex01_1", "failed", "a <hint>", 0, 1)
    bundle = result._repr_mimebundle_()
    assert "&lt;hint&gt;" in bundle["text/html"] and bundle[checks.MIME]["status"] == "failed"
    assert not result.passed


def test_checks_leave_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    checks.ex01_2(lambda x: x)
    assert torch.equal(torch.rand(3), expected)


def test_a_student_except_exception_cannot_swallow_the_time_limit():
    @check("ex99_2", "99_test", "a loop that catches", seconds=0.5)
    def looping(answer):
        answer()

    def stubborn():
        while True:
            try:
                while True:
                    pass
            except Exception:
                pass
    try:
        result = looping(stubborn)
    finally:
        checks.REGISTRY.pop("ex99_2")
    assert result.status == "error" and "stopped after" in result.message


def test_an_error_quotes_the_deepest_line_of_the_students_code():
    def helper(x):
        return torch.log(x) @ torch.ones(3, 3)  # torch raises inside its own code

    def lognormal_pdf(x):
        return helper(x)
    result = checks.ex01_2(lognormal_pdf)
    assert result.status == "error" and "in helper" in result.message
    assert "torch.log(x) @ torch.ones(3, 3)" in result.message
    assert "ws01.py" not in result.message and "lambda" not in result.message


def test_a_float32_answer_that_misses_a_float64_tolerance_is_told_so():
    def mle_step(model, opt, batch):
        opt.zero_grad()
        loss = -model.log_prob(batch).mean()
        loss.backward()
        opt.step()
        return loss.detach().float()  # right, but rounded to single precision
    result = checks.ex03_3(mle_step)
    assert result.status == "failed" and "float32" in result.message and "float64" in result.message


def test_no_reference_answers_are_importable_from_the_check_modules():
    for module in ("ws01", "ws02", "ws03", "ws04", "ws05", "ws06", "ws07", "ws08", "ws09", "ws10", "ws11",
                   "ws12"):
        names = dir(importlib.import_module(f"course_lib.checks.{module}"))
        assert not [n for n in names if n.startswith("reference")], module


def test_answers_that_lie_about_their_type_are_refused():
    class Liar(torch.Tensor):
        def __eq__(self, other):
            return True

    class Yes(int):
        def __eq__(self, other):
            return True
    result = checks.ex01_2(lambda x: torch.zeros_like(x).as_subclass(Liar))
    assert result.status == "failed" and "subclass of torch.Tensor" in result.message
    result = checks.ex06_4(lambda flow, op, d: Yes(1))
    assert result.status == "failed" and "Yes" in result.message


def test_a_model_that_overrides_log_prob_earns_nothing():
    from course_lib.flows import Affine, Planar
    from course_lib.model import NormalizingFlow

    class Cheat(NormalizingFlow):
        def log_prob(self, x):
            return super().log_prob(x) + 3.0

        def sample_and_log_prob(self, n):
            x, lp = super().sample_and_log_prob(n)
            from course_lib.targets import banana_log_prob
            return x, banana_log_prob(x)
    result = checks.ex03_4(lambda target: Cheat(2, [Affine(2), Planar(2)]))
    assert result.status == "failed" and "not a subclass" in result.message
