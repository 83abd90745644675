"""The peer comparison of the benchmark: it runs with zuko and explains itself without."""
import pytest

from course_lib.bench import peers


def test_without_zuko_the_section_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(peers, "_zuko", lambda: None)
    text = peers.run(quick=True)
    assert "pip install -e .[bench]" in text and "zuko" in text


def test_side_by_side_refuses_to_run_without_zuko(monkeypatch):
    monkeypatch.setattr(peers, "_zuko", lambda: None)
    with pytest.raises(ImportError, match=r"\[bench\]"):
        peers.side_by_side("eight_gaussians", 0, steps=2)

