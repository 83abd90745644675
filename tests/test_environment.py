"""The three install routes stay consistent: pyproject.toml declares ranges, requirements.txt
pins a tested set inside them, environment.yml installs requirements.txt."""
import pathlib
import re
import tomllib
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = pathlib.Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def declared():
    project = PYPROJECT["project"]
    # the `bench` extra (a peer library for the benchmark) is not part of the tested set
    reqs = project["dependencies"] + [r for name, extra in project["optional-dependencies"].items()
                                      if name != "bench" for r in extra]
    return {canonicalize_name(Requirement(r).name): Requirement(r) for r in reqs}


def pinned():
    pins, lines = {}, (ROOT / "requirements.txt").read_text().splitlines()
    for line in lines:
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            req = Requirement(line)
            pins[canonicalize_name(req.name)] = req
    return pins, [l.strip() for l in lines]


def test_every_declared_dependency_is_pinned_in_requirements():
    pins, _ = pinned()
    missing = sorted(set(declared()) - set(pins))
    assert not missing, f"declared in pyproject.toml but not pinned in requirements.txt: {missing}"


@pytest.mark.parametrize("name", sorted(pinned()[0]))
def test_every_pin_is_exact_and_inside_the_declared_range(name):
    req = pinned()[0][name]
    (spec,) = req.specifier
    assert spec.operator == "==", f"{name} is not pinned exactly: {req}"
    if name in declared():
        assert declared()[name].specifier.contains(spec.version, prereleases=True), \
            f"{name}=={spec.version} is outside pyproject's range {declared()[name].specifier}"


def test_torch_is_pinned_to_the_cpu_build_on_disk():
    assert str(pinned()[0]["torch"].specifier) == "==2.13.0"


def test_requirements_install_the_course_package_with_its_dev_extras():
    assert "-e .[dev]" in pinned()[1]


def test_environment_yml_installs_python_311_and_requirements_with_pip():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s*-\s*python=3\.11\s*$", text, re.M)
    assert re.search(r"^\s*-\s*pip\s*$", text, re.M)
    assert re.search(r"^\s*-\s*-r requirements\.txt\s*$", text, re.M)


@pytest.mark.parametrize("name", sorted(pinned()[0]))
def test_installed_version_is_the_pinned_one(name):
    want = next(iter(pinned()[0][name].specifier)).version
    have = metadata.version(name).split("+")[0]
    assert have == want, f"{name}: requirements.txt pins {want}, this environment has {have}"


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    command = "pip install -r requirements.txt && npm ci --prefix slides --no-audit --no-fund && pytest"
    assert f"\n{command}\n" in readme
    assert command in (ROOT / ".ci" / "run").read_text().splitlines()


@pytest.mark.parametrize("name", sorted(declared()))
def test_every_floor_is_the_tested_pin(name):
    """A declared lower bound is a promise that the version works: only the pins are tested."""
    floors = [s.version for s in declared()[name].specifier if s.operator == ">="]
    assert floors, f"{name} has no lower bound in pyproject.toml: {declared()[name]}"
    pin = next(iter(pinned()[0][name].specifier)).version
    assert floors == [pin], (f"{name}: pyproject's floor {floors[0]} is not the tested pin {pin}; "
                             "test the lower version (README, Tests) before declaring it")


def test_python_floor_is_the_tested_python():
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"


def test_the_bench_extra_pins_its_peer_exactly_and_the_course_never_imports_it():
    extra = [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"]["bench"]]
    assert extra and all(str(r.specifier).startswith("==") for r in extra)
    for path in (ROOT / "course_lib").rglob("*.py"):
        if path.name != "peers.py":
            assert "import zuko" not in path.read_text(), path
