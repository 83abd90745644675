"""Claims: a true claim prints what it checked, a false one fails, and under nbval a falsified
claim or a drifted value fails the notebook."""
import subprocess
import sys

import nbformat
import numpy as np
import pytest
import torch

from course_lib.claims import ClaimError, claim, format_value


def test_true_claim_prints_statement_and_values(capsys):
    claim("the reverse fit has the higher ESS", 0.82 > 0.61, reverse=0.8213, forward=0.6149)
    assert capsys.readouterr().out == "\u2713 the reverse fit has the higher ESS  (reverse = 0.82, forward = 0.61)\n"


def test_false_claim_raises_with_values(capsys):
    with pytest.raises(ClaimError, match=r"the fit found both moons.*mass = 0.11"):
        claim("the fit found both moons", False, mass=0.1123)
    assert capsys.readouterr().out == ""


def test_tensor_truth_values():
    claim("tensor truth", torch.tensor(True), value=torch.tensor(1.5))
    with pytest.raises(ClaimError):
        claim("tensor falsehood", torch.tensor(False))
    with pytest.raises(TypeError, match="one truth value"):
        claim("two", torch.tensor([True, False]))
    with pytest.raises(TypeError, match="truth value"):
        claim("a string", "yes")


def test_numpy_truth_values(capsys):
    x = np.array([0.2, 0.7])
    claim("numpy truth", (x > 0.1).all(), smallest=x.min())
    assert capsys.readouterr().out == "\u2713 numpy truth  (smallest = 0.20)\n"
    with pytest.raises(ClaimError):
        claim("numpy falsehood", np.bool_(False))
    with pytest.raises(TypeError, match="one truth value"):
        claim("two", x > 0.1)
    with pytest.raises(TypeError, match="one truth value"):
        claim("a float is not a truth value", np.float64(0.7))


@pytest.mark.parametrize("value, digits, text", [(0.999, 2, "1.00"), (3, 2, "3"), (-0.0001, 2, "0.00"),
                                                 (float("inf"), 2, "inf"), (True, 2, "True"),
                                                 (torch.tensor(2.345), 1, "2.3"), ("arc", 2, "arc")])
def test_format_value(value, digits, text):
    assert format_value(value, digits) == text


def _notebook(tmp_path, stored: str, value: str):
    source = ("# NBVAL_CHECK_OUTPUT\nfrom course_lib.claims import claim\n"
              f"value = {value}\nclaim('the value is below one', value < 1, value=value)")
    cell = nbformat.v4.new_code_cell(source)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stored)]
    cell.execution_count = 1
    nb = nbformat.v4.new_notebook(cells=[cell])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "claim.ipynb"
    nbformat.write(nb, path)
    return path


def _nbval(path):
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider",
                           "--nbval-lax", "--nbval-current-env", "-o", "addopts=", str(path)],
                          capture_output=True, text=True, cwd=path.parent, timeout=300)


STORED = "\u2713 the value is below one  (value = 0.50)\n"


@pytest.mark.parametrize("value, passes", [("0.5", True), ("1.5", False), ("0.6", False)],
                         ids=["claim holds", "claim falsified", "value drifted"])
def test_nbval_fails_a_falsified_claim(tmp_path, value, passes):
    result = _nbval(_notebook(tmp_path, STORED, value))
    assert (result.returncode == 0) == passes, result.stdout[-2000:]
    if value == "1.5":
        assert "ClaimError" in result.stdout
