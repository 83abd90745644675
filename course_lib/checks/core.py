"""What a check is: ``draw`` inputs, ``probe`` the student's answer on them, ``judge`` the data.

A check is written once, as a body ``body(answer)`` that takes every random input from
``fresh_generator()`` and touches the student's answer only through ``call``. The body
then serves three purposes:

- ``check.draw(generator) -> inputs``: a seed (plain data) from which the body draws its
  dimensions, probe points, fields and networks;
- ``check.probe(answer, inputs) -> data``: runs the body with the student's answer; every
  ``call`` records what the answer returned, as plain data only (tensors, numbers, strings,
  lists and dicts of these, a model's state with its architecture);
- ``check.judge(inputs, data) -> CheckResult``: runs the body again without any student
  code: each ``call`` hands back the recorded data, and every reference is computed afresh.

In a student's notebook ``check(answer)`` probes and judges in one pass, in the kernel, and
displays the result. The grader draws the inputs in its own process, probes inside the
student's sandboxed kernel and judges in its own process, so nothing the student's code does
to its kernel can change a verdict: only data that is correct for the grader's inputs passes.

A check never raises because of the answer. A stub (``NotImplementedError``) is "not
attempted", any other exception an "error" that quotes the deepest line of the student's
code, a wrong answer "failed" with a hint, a loop is stopped by a ``TimeLimit``.
"""
from __future__ import annotations

import functools
import html
import math
import os
import signal
import sysconfig
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .plain import Handle, NotPlain, plain, plain_state, unplain

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


class TimeLimit(BaseException):
    """The answer ran out of time. A ``BaseException``, so a student's ``except Exception``
    cannot swallow it."""


class MissingData(Exception):
    """While judging: the probe recorded no (or different) data for this call."""


@dataclass
class _Session:
    mode: str                      # "probe" (runs the answer) or "judge" (replays its data)
    seed: int
    records: list = field(default_factory=list)
    cursor: int = 0
    generators: int = 0
    handles: dict = field(default_factory=dict)
    low_precision: str | None = None
    user_dtype: torch.dtype = torch.float32


_SESSION: _Session | None = None


def fresh_generator() -> torch.Generator:
    """The next random generator of this check's inputs: fresh seeds at every check, the
    same sequence when the grader judges the data a probe recorded for the same inputs."""
    s = _SESSION
    if s is None:  # outside a check (a test, a notebook demo)
        return torch.Generator().manual_seed(_random_seed())
    s.generators += 1
    return torch.Generator().manual_seed((s.seed * 1_000_003 + s.generators) % 2**62)


def _random_seed() -> int:
    return int.from_bytes(os.urandom(8), "little") % 2**62


def require(condition: bool, message: str) -> None:
    """Fail the check with ``message`` unless ``condition`` holds."""
    if not condition:
        raise Fail(message)


# --- the student's code is only ever run through ``call`` ----------------------------------

_LIBRARY_DIRS = tuple(os.path.realpath(p) + os.sep for p in {
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),   # course_lib
    os.path.dirname(torch.__file__),
    sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"],
    sysconfig.get_paths()["platlib"]})


def _is_student_frame(filename: str) -> bool:
    if filename.startswith("<frozen") or filename.startswith("<string>"):
        return False
    return not os.path.realpath(filename).startswith(_LIBRARY_DIRS)


def describe_exception(exc: BaseException, label: str = "") -> str:
    """``your code raised KeyError for <label>: ... (in f, line 3: ...)``, quoting the deepest
    frame of the student's own code rather than torch's internals or the check's helpers."""
    where = f" for {label}" if label else ""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if _is_student_frame(f.filename)]
    text = f"your code raised {type(exc).__name__}{where}: {exc}"
    if own:
        f = own[-1]
        name = "" if f.name == "<module>" else f"in {f.name}, "
        text += f" ({name}line {f.lineno}: {(f.line or '').strip()})"
        if own[-1] is not frames[-1]:
            text += f" inside {os.path.basename(frames[-1].filename)}"
    return text


def _digest(args, kwargs) -> list[float]:
    """Sums of the tensor and number arguments: the judge's inputs must be the probe's."""
    out: list[float] = []

    def visit(v):
        if isinstance(v, torch.Tensor):
            d = v.detach().double()
            out.extend((float(d.sum()), float(d.abs().sum())))
        elif isinstance(v, torch.nn.Module):
            for p in v.state_dict().values():
                visit(p)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(float(v))
        elif isinstance(v, (list, tuple)):
            for u in v:
                visit(u)
    visit(list(args) + list(kwargs.values()))
    return out


def _same_digest(a: list, b: list) -> bool:
    return len(a) == len(b) and all(
        (x != x and y != y) or math.isclose(x, y, rel_tol=1e-7, abs_tol=1e-9) for x, y in zip(a, b))


def call(answer: Callable, *args, label: str = "", convert: Callable | None = None,
         mutates: tuple = (), **kwargs) -> Any:
    """Call the student's function and return what it returned, as plain data.

    ``convert`` turns an answer that is not plain data (a sympy expression, say) into plain
    data, inside the probe. ``mutates`` lists modules the answer is expected to change (an
    optimiser step): their state after the call is recorded and, when judging, loaded into
    the judge's own copies. A stub is reported as not attempted and a crash as an error that
    names the input.
    """
    s = _SESSION
    if s is None:
        raise RuntimeError("call() runs inside a check")
    digest = _digest(args, kwargs)
    if s.mode == "judge":
        if s.cursor >= len(s.records):
            raise MissingData(f"no data was recorded for {label or 'a call of your function'}")
        record = s.records[s.cursor]
        s.cursor += 1
        if record.get("label") != label or not _same_digest(record.get("digest", []), digest):
            raise MissingData(f"the data recorded for {label or 'a call'} belongs to other inputs")
        if "raised" in record:
            kind, message = record["raised"]
            raise {"not attempted": NotAttempted, "error": AnswerError, "failed": Fail}[kind](message)
        for module, state in zip(mutates, record.get("states", [])):
            _load(module, state)
        return unplain(record["output"], s.handles)
    record: dict = {"label": label, "digest": digest}
    s.records.append(record)
    if isinstance(answer, Handle):
        answer = s.handles[answer.number]
    rng = torch.random.get_rng_state()
    torch.set_default_dtype(s.user_dtype)  # the student's code runs with the notebook's settings
    try:
        out = answer(*args, **kwargs)
        if convert is not None:
            out = convert(out)
    except NotImplementedError:
        record["raised"] = ("not attempted", "")
        raise NotAttempted() from None
    except (Fail, NotAttempted, AnswerError, MissingData):
        raise
    except Exception as exc:  # the student's code raised: describe it, never re-raise
        record["raised"] = ("error", describe_exception(exc, label))
        raise AnswerError(record["raised"][1]) from None
    finally:
        torch.random.set_rng_state(rng)  # the answer's draws do not shift the check's inputs
        torch.set_default_dtype(torch.float32)
    try:
        record["output"] = plain(out, s.handles, what=f"the answer{f' for {label}' if label else ''}")
        record["states"] = [plain_state(m) for m in mutates]
    except NotPlain as exc:
        record["raised"] = ("failed", str(exc))
        raise Fail(str(exc)) from None
    for module, state in zip(mutates, record["states"]):
        _load(module, state)
    return unplain(record["output"], s.handles)


def _load(module: torch.nn.Module, state: dict) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except Exception as exc:
        raise Fail("your function changed the model's parameters into something else than "
                   f"updated values of the same parameters ({str(exc).splitlines()[0]})") from None


def as_tensor(value, name: str, shape: tuple | None = None) -> torch.Tensor:
    """Accept a tensor, number or array; fail with a clear message on the wrong type/shape/NaN."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = torch.tensor(float(value), dtype=torch.float64)
    elif not isinstance(value, torch.Tensor):
        try:
            value = torch.as_tensor(value, dtype=torch.float64)
        except Exception:
            raise Fail(f"{name} should be a torch.Tensor (or a number), got {type(value).__name__}")
    if value.dtype in (torch.float32, torch.float16, torch.bfloat16) and _SESSION is not None:
        _SESSION.low_precision = f"{name} came back as {value.dtype}"
    value = value.detach().to(torch.float64)
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise Fail(f"{name} should have shape {tuple(shape)}, got {tuple(value.shape)}")
    if not bool(torch.isfinite(value).all()):
        raise Fail(f"{name} contains NaN or inf; look for an overflow of exp, a log of a non-positive "
                   "number or a division by zero")
    return value


def answer_pair(result, name: str, shape: tuple) -> tuple[torch.Tensor, torch.Tensor]:
    """Unpack an answer that must be ``(output, log_det)`` with the given output shape."""
    require(isinstance(result, tuple) and len(result) == 2,
            f"{name} should return a pair (output, log_det), got {type(result).__name__}")
    return (as_tensor(result[0], f"the output of {name}", shape),
            as_tensor(result[1], f"the log-det of {name}", shape[:1]))


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


def _precision_note(s: _Session) -> str:
    if not s.low_precision:
        return ""
    return (f"\n(note: {s.low_precision}; single precision keeps about 7 digits, fewer than this "
            "check's float64 tolerance: compute in float64, the dtype of the inputs)")


def check(exercise: str, worksheet: str, title: str, points: int = 1, seconds: float = 20.0):
    """Turn ``body(answer)`` (which uses ``fresh_generator``/``call``/``require`` and may return
    a success message) into a check with ``draw``, ``probe`` and ``judge`` that always
    returns a ``CheckResult``."""
    def decorate(body: Callable) -> Callable:
        REGISTRY[exercise] = CheckInfo(exercise, worksheet, points, title)

        def result(status: str, message: str) -> CheckResult:
            return CheckResult(exercise, status, message, points if status == "passed" else 0, points)

        def run_body(mode: str, answer, inputs: dict, records: list) -> tuple[CheckResult, _Session]:
            global _SESSION
            session = _Session(mode, int(inputs["seed"]), records)
            previous, _SESSION = _SESSION, session
            state = torch.random.get_rng_state()
            # the check's own inputs do not depend on the notebook's default dtype
            session.user_dtype = torch.get_default_dtype()
            torch.set_default_dtype(torch.float32)
            torch.manual_seed(session.seed)  # draws from the global generator are the judge's too
            try:
                if mode == "probe":
                    message = _with_time_limit(lambda: body(answer), seconds)
                else:
                    message = body(Handle(-1))
            except NotAttempted:
                return result("not attempted", "your function still raises NotImplementedError: "
                                               "replace the stub with your code"), session
            except Fail as exc:
                return result("failed", str(exc) + _precision_note(session)), session
            except AnswerError as exc:
                return result("error", str(exc)), session
            except MissingData as exc:
                return result("error", f"{exc}: the check cell did not run to its end"), session
            except TimeLimit:
                return result("error", f"stopped after {seconds:.0f} s: look for an infinite loop "
                                       "or a computation far larger than needed"), session
            except Exception as exc:  # a check must never raise
                return result("error", f"the check could not run your answer ({type(exc).__name__}: "
                                       f"{exc}); does it have the signature the exercise asks for?"), session
            finally:
                _SESSION = previous
                torch.random.set_rng_state(state)
                torch.set_default_dtype(session.user_dtype)
            return result("passed", message or "correct"), session

        def draw(generator: torch.Generator) -> dict:
            """The check's inputs: a seed from which the body draws everything else."""
            return {"seed": int(torch.randint(0, 2**62, (1,), generator=generator))}

        def probe(answer, inputs: dict) -> dict:
            """Run the answer on the inputs; the recorded data and the local verdict."""
            if answer is None or answer is NotImplemented:
                return {"exercise": exercise, "records": [], "status": "not attempted",
                        "message": "no answer yet: fill in the cell above and run it"}
            verdict, session = run_body("probe", answer, inputs, [])
            return {"exercise": exercise, "records": session.records, "status": verdict.status,
                    "message": verdict.message}

        def judge(inputs: dict, data: dict) -> CheckResult:
            """The verdict on recorded data, computed without running any of the student's code.
            Only a zero-point status is ever taken from the data itself."""
            if not data.get("records"):
                status = data.get("status")
                if status in ("not attempted", "error"):
                    return result(status, str(data.get("message", ""))[:2000])
                return result("error", "the check cell recorded no data")
            verdict, session = run_body("judge", None, inputs, list(data["records"]))
            if verdict.status == "passed" and session.cursor != len(session.records):
                return result("error", "the check cell recorded more data than the check asked for")
            return verdict

        @functools.wraps(body)
        def run(answer=None) -> CheckResult:
            inputs = draw(torch.Generator().manual_seed(_random_seed()))
            if answer is None or answer is NotImplemented:
                return result("not attempted", "no answer yet: fill in the cell above and run it")
            return run_body("probe", answer, inputs, [])[0]

        run.exercise, run.draw, run.probe, run.judge = exercise, draw, probe, judge
        REGISTRY_FUNCTIONS[exercise] = run
        return run
    return decorate


def probe_to_file(exercise: str, answer, inputs_path: str, data_path: str) -> None:
    """The grader's side door into a student's kernel: read the inputs the grader drew, probe
    the answer on them, save the plain data for the grader to judge. Shows nothing."""
    import json

    from . import plain as _plain
    inputs = json.loads(open(inputs_path).read())
    check_fn = REGISTRY_FUNCTIONS[exercise]
    try:
        data = check_fn.probe(answer, inputs)
        _plain.validate(data)
    except BaseException as exc:  # a probe that cannot run is an error, never a pass
        data = {"exercise": exercise, "records": [], "status": "error",
                "message": f"the check could not record your answer ({type(exc).__name__})"}
    torch.save(data, data_path)


REGISTRY_FUNCTIONS: dict[str, Callable] = {}
