"""What a check is: a function of the student's answer that always returns a ``CheckResult``.

A check never raises because of the answer. It calls the answer under a time limit, turns
``NotImplementedError`` (an untouched stub) into "not attempted", any other exception into a
message naming the input that failed, and its own assertion failures into "failed" with a
hint. Results display as a coloured box in JupyterLab and carry a machine-readable copy for
the grader.
"""
from __future__ import annotations

import functools
import html
import signal
import threading
import traceback
from dataclasses import dataclass
from typing import Any, Callable

import torch

MIME = "application/vnd.course-check+json"
STATUSES = ("passed", "failed", "not attempted", "error")
REGISTRY: dict[str, "CheckInfo"] = {}


@dataclass
class CheckInfo:
    id: str
    worksheet: str
    points: int
    title: str


@dataclass
class CheckResult:
    exercise: str
    status: str
    message: str
    points: int = 0
    max_points: int = 1

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def as_dict(self) -> dict:
        return {"id": self.exercise, "status": self.status, "points": self.points,
                "max_points": self.max_points, "message": self.message}

    def __repr__(self) -> str:
        return f"[{self.exercise}] {self.status.upper()}: {self.message}"

    def _repr_mimebundle_(self, include=None, exclude=None):
        colour = {"passed": "#1a7f37", "failed": "#cf222e", "not attempted": "#6e7781",
                  "error": "#bc4c00"}[self.status]
        box = (f'<div style="border-left:6px solid {colour};padding:6px 10px;margin:4px 0;'
               f'background:rgba(127,127,127,0.08)"><b style="color:{colour}">{self.exercise}: '
               f'{self.status}</b> ({self.points}/{self.max_points})<br>'
               f'{html.escape(self.message).replace(chr(10), "<br>")}</div>')
        return {"text/plain": repr(self), "text/html": box, MIME: self.as_dict()}


class Fail(AssertionError):
    """Raised inside a check body: the answer is wrong; the message says how and hints why."""


class NotAttempted(Exception):
    pass


class AnswerError(Exception):
    """The student's code raised; carries a readable description."""


class TimeLimit(Exception):
    pass


def fresh_generator() -> torch.Generator:
    """A generator with a new seed each call: checks draw fresh inputs, so a hard-coded
    answer cannot pass."""
    return torch.Generator().manual_seed(torch.seed() % 2**31)


def answer_pair(result, name: str, shape: tuple) -> tuple[torch.Tensor, torch.Tensor]:
    """Unpack an answer that must be ``(output, log_det)`` with the given output shape."""
    require(isinstance(result, tuple) and len(result) == 2,
            f"{name} should return a pair (output, log_det), got {type(result).__name__}")
    return (as_tensor(result[0], f"the output of {name}", shape),
            as_tensor(result[1], f"the log-det of {name}", shape[:1]))


def require(condition: bool, message: str) -> None:
    """Fail the check with ``message`` unless ``condition`` holds."""
    if not condition:
        raise Fail(message)


def call(answer: Callable, *args, label: str = "", **kwargs) -> Any:
    """Call the student's function; report a stub as not attempted and a crash as an error
    that names the input."""
    try:
        return answer(*args, **kwargs)
    except NotImplementedError:
        raise NotAttempted() from None
    except (Fail, NotAttempted, TimeLimit):
        raise
    except Exception as exc:  # the student's code raised: describe it, never re-raise
        where = f" for {label}" if label else ""
        last = traceback.extract_tb(exc.__traceback__)[-1]
        raise AnswerError(f"your code raised {type(exc).__name__}{where}: {exc} "
                          f"(line {last.lineno}: {last.line})") from None


def as_tensor(value, name: str, shape: tuple | None = None) -> torch.Tensor:
    """Accept a tensor, number or array; fail with a clear message on the wrong type/shape/NaN."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = torch.tensor(float(value), dtype=torch.float64)
    elif not isinstance(value, torch.Tensor):
        try:
            value = torch.as_tensor(value, dtype=torch.float64)
        except Exception:
            raise Fail(f"{name} should be a torch.Tensor (or a number), got {type(value).__name__}")
    value = value.detach().to(torch.float64)
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise Fail(f"{name} should have shape {tuple(shape)}, got {tuple(value.shape)}")
    if not bool(torch.isfinite(value).all()):
        raise Fail(f"{name} contains NaN or inf; look for an overflow of exp, a log of a non-positive "
                   "number or a division by zero")
    return value


def _with_time_limit(fn: Callable, seconds: float):
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        def on_alarm(signum, frame):
            raise TimeLimit()
        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return fn()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    box: dict = {}
    worker = threading.Thread(target=lambda: box.update(result=_capture(fn)), daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise TimeLimit()
    kind, value = box["result"]
    if kind == "raise":
        raise value
    return value


def _capture(fn):
    try:
        return "ok", fn()
    except BaseException as exc:  # handed back to the calling thread
        return "raise", exc


def check(exercise: str, worksheet: str, title: str, points: int = 1, seconds: float = 20.0):
    """Turn ``body(answer)`` (which uses ``require``/``call`` and may return a success message)
    into a check that always returns a ``CheckResult``."""
    def decorate(body: Callable) -> Callable:
        REGISTRY[exercise] = CheckInfo(exercise, worksheet, points, title)

        @functools.wraps(body)
        def run(answer=None, *args, **kwargs) -> CheckResult:
            def result(status, message):
                return CheckResult(exercise, status, message, points if status == "passed" else 0,
                                   points)
            if answer is None or answer is NotImplemented:
                return result("not attempted", "no answer yet: fill in the cell above and run it")
            state = torch.random.get_rng_state()
            try:
                message = _with_time_limit(lambda: body(answer, *args, **kwargs), seconds)
            except NotAttempted:
                return result("not attempted", "your function still raises NotImplementedError: "
                                               "replace the stub with your code")
            except Fail as exc:
                return result("failed", str(exc))
            except AnswerError as exc:
                return result("error", str(exc))
            except TimeLimit:
                return result("error", f"stopped after {seconds:.0f} s: look for an infinite loop "
                                       "or a computation far larger than needed")
            except Exception as exc:  # a check must never raise
                return result("error", f"the check could not run your answer ({type(exc).__name__}: "
                                       f"{exc}); does it have the signature the exercise asks for?")
            finally:
                torch.random.set_rng_state(state)
            return result("passed", message or "correct")
        run.exercise = exercise
        return run
    return decorate
