"""Exercise checks that test without telling, and the ledger the grader reads.

A chapter's exercise cell calls a check from this package, e.g.
``dl.exercises.ch1.check_split_fractions(split_fractions, tok)``. The check compares the
student's answer with a value the library computes (``diffusion_lab`` functions the student is not
asked to open), with a tolerance, or with a property (monotone, in range, beats a baseline) — the
notebook cell never holds the formula it asks for. A wrong or empty answer raises
:class:`ExerciseFailed` with a hint that says *where* to look, not *what* to write.

Three kinds of exercise (``KINDS``):

* **compute** — checked by a function below;
* **predict** — the student writes ``prediction`` *before* a given run cell and ``observed``
  after it; :func:`check_prediction` checks presence and consistency with the measurement (a wrong
  prediction is reported, not penalised: the point is to commit before looking);
* **explain** — a short written answer, graded by hand; the model answer is in the teacher
  edition only (see ``diffusion_lab.editions``).

Every check appends ``{"exercise", "passed", "hint"}`` to the JSON-lines file named by the
environment variable ``DIFFUSION_LAB_GRADE_LOG`` when it is set: that is how
``python -m diffusion_lab grade`` reads a kernel's results (``diffusion_lab.grading``).
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence

KINDS = ("compute", "predict", "explain")
GRADE_LOG_ENV = "DIFFUSION_LAB_GRADE_LOG"
RESULTS: list[dict] = []  # this process's results, newest last (tests read it)


class ExerciseFailed(AssertionError):
    """A check did not pass; the message is a hint that does not give the answer away."""


def record(label: str, passed: bool, hint: str = "") -> None:
    """Remember one result; append it to ``$DIFFUSION_LAB_GRADE_LOG`` when that is set."""
    row = {"exercise": label, "passed": int(bool(passed)), "hint": hint}
    RESULTS.append(row)
    path = os.environ.get(GRADE_LOG_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")


def checker(label: str) -> Callable:
    """Decorator: run a check, print ``label: correct — …`` and record the outcome.

    The wrapped function raises :class:`ExerciseFailed` (via :func:`require`) or returns a short
    success message. Any other exception is recorded as a failure with its type and re-raised.
    """

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def run(*args, **kwargs):
            try:
                message = fn(*args, **kwargs)
            except ExerciseFailed as err:
                record(label, False, str(err))
                raise
            except Exception as err:
                record(label, False, f"your answer raised {type(err).__name__}: {err}")
                raise
            record(label, True, message or "")
            print(f"{label}: correct" + (f" — {message}" if message else ""))
            return True

        run.label = label
        return run

    return wrap


def require(condition, hint: str) -> None:
    """Fail with ``hint`` unless ``condition`` holds."""
    if not condition:
        raise ExerciseFailed(hint)


def require_effect(condition, hint: str) -> None:
    """Like `require`, for what the *model* must show rather than the answer (a rule that beats
    another on the chapter's puzzles). Where claims are reported rather than enforced (the
    smoke profile's seconds-trained models: `notebook.claims_mode`), it is reported instead."""
    from ...course.notebook import claims_reported, report_claim

    if not condition and claims_reported():
        report_claim(False, hint, "exercise check")
        return
    require(condition, hint)


def is_blank(value) -> bool:
    """True for what an untouched student cell leaves: ``...``, ``None`` or an empty string."""
    return value is None or value is Ellipsis or (isinstance(value, str) and not value.strip())


def answered(value, name: str):
    """Fail with a "not answered yet" hint when ``value`` is blank; else return it."""
    require(not is_blank(value), f"{name} is still empty: replace the `...` with your answer")
    return value


def number(value, name: str) -> float:
    """``value`` as a finite float, or a hint naming what was passed instead."""
    answered(value, name)
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ExerciseFailed(f"{name} should be a number, got {type(value).__name__}") from None
    require(math.isfinite(x), f"{name} is {x}: a finite number is expected")
    return x


def numbers(values, name: str, length: int | None = None) -> list[float]:
    """A sequence of finite floats (of ``length`` when given)."""
    answered(values, name)
    try:
        xs = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ExerciseFailed(f"{name} should be a sequence of numbers") from None
    if length is not None:
        require(len(xs) == length, f"{name} should hold {length} numbers, it holds {len(xs)}")
    require(all(math.isfinite(x) for x in xs), f"{name} holds a nan or an infinity")
    return xs


def check_prediction(label: str, prediction, observed, measured: Mapping[str, float] | None = None,
                     *, answer: str | None = None, options: Sequence[str] | None = None,
                     lower_wins: bool = True, tie: float = 0.0) -> bool:
    """Predict-then-run: ``prediction`` (written before the run) and ``observed`` (after it) must
    both be one of ``options``, and ``observed`` must agree with the measurement.

    The measured answer is ``answer`` when given, else the key of ``measured`` with the lowest
    (``lower_wins``) or highest value — or ``"about the same"`` when the two values differ by at
    most ``tie`` (then ``"about the same"`` must be among the options).
    """
    if answer is None:
        if not measured:
            raise ValueError("check_prediction needs `measured` or `answer`")
        keys = list(measured)
        best = (min if lower_wins else max)(keys, key=lambda k: measured[k])
        values = sorted(measured.values())
        answer = "about the same" if tie and values[-1] - values[0] <= tie else best
        options = list(options or keys + (["about the same"] if tie else []))
    options = list(options or [answer])
    choices = ", ".join(repr(o) for o in options)
    try:
        for name, value in (("prediction", prediction), ("observed", observed)):
            answered(value, name)
            require(value in options, f"{name} must be one of {choices}, got {value!r}")
        require(observed == answer, f"observed = {observed!r} does not agree with the printed "
                                    "measurement: read the run cell's output again")
    except ExerciseFailed as err:
        record(label, False, str(err))
        raise
    verdict = "your prediction was right" if prediction == answer else (
        f"you predicted {prediction!r}: what made the run come out differently?")
    record(label, True, verdict)
    print(f"{label}: correct — measured {answer!r}; {verdict}")
    return True


from . import ch0, ch1, ch2, ch3, ch4, ch5, ch5b, ch6, ch7, ch8  # noqa: E402  (the checks use the helpers above)

__all__ = ["KINDS", "ExerciseFailed", "answered", "check_prediction", "checker", "ch0", "ch1",
           "ch2", "ch3", "ch4", "ch5", "ch5b", "ch6", "ch7", "ch8", "is_blank", "number",
           "numbers", "record", "require"]
