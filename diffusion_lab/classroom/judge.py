"""The grader's own checks: run in the grader's process, on the student's answers and the
teacher's context.

A kernel hands over the arguments its checks were called with (``capture``). Here the check of
each label is looked up in the grader's own import of ``classroom.exercises`` (never the one a
capture names) and called with

* the **answers** (the parameters the check declares in ``answers``) from the student's capture:
  data, or proxies of the student's functions (``rpc``), whose calls run in the student's
  sandbox;
* every other parameter — the **context**: ``rows``, ``model``, ``race`` — from the capture of the
  teacher edition's run, which the grader made itself; for a parameter the check declares in
  ``own`` (a timing), the student's value where it agrees with the teacher's, else the teacher's,
  with a note;
* for ``rules`` (a strategy the student registered), the student's registry entry, registered in
  the grader's registry and in the teacher's kernel under the same name, its rule a proxy.

What the check raises or returns is the grade: `ExerciseFailed` is a fail with its hint; a
failure of the student's code (an exception, a timeout, a dead kernel) is a fail saying so.
"""

from __future__ import annotations

import contextlib
import io
import threading

from . import exercises
from .exercises import ExerciseFailed
from .rpc import RemoteError

CHECK_LOCK = threading.RLock()  # one check at a time: registries and torch state are global
HINT_CHARS = 300


def _library_rules() -> frozenset:
    from ..registry import ALIASES, STRATEGIES

    return frozenset(STRATEGIES) | frozenset(ALIASES)


LIBRARY_RULES = _library_rules()  # a student's rule never replaces one of these


def checks() -> dict:
    """``{label: check}`` of every checker in the library (the grader's own import)."""
    found = {}
    for name in dir(exercises):
        module = getattr(exercises, name)
        if getattr(module, "__name__", "").startswith(f"{exercises.__name__}.ch"):
            for value in vars(module).values():
                if callable(value) and hasattr(value, "label") and hasattr(value, "grading"):
                    found[value.label] = value
    return found


def check_of(label: str, kind: str):
    """The check that grades exercise ``label`` of ``kind`` ("compute" or "predict")."""
    if kind == "predict":
        return exercises.check_prediction
    found = checks().get(label)
    if found is None:
        raise ValueError(f"no check in diffusion_lab.classroom.exercises has label {label!r}")
    return found


def arguments(check, mine: dict, reference: dict) -> tuple[dict, list[str]]:
    """(keyword arguments for ``check``, notes): answers from ``mine``, context from
    ``reference``, ``own`` parameters from whichever agrees."""
    role, notes, args = check.grading, [], {}
    for name, ref_value in reference.items():
        if name in role["answers"]:
            args[name] = mine.get(name, ...)
        elif name in role["own"] and name in mine:
            problem = role["own"][name](mine[name], ref_value)
            args[name] = ref_value if problem else mine[name]
            if problem:
                notes.append(f"graded with the grader's own `{name}`: yours does not agree "
                             f"({problem})")
        else:
            args[name] = ref_value
    return args, notes


@contextlib.contextmanager
def _strategies(strategies: dict, reference_endpoint):
    """Register the student's strategies here and in the teacher's kernel, for one check."""
    from ..registry import STRATEGIES, Strategy

    saved = {}
    try:
        for name, strategy in strategies.items():
            if not isinstance(name, str) or not isinstance(strategy, Strategy) or \
                    name in LIBRARY_RULES:
                continue
            saved[name] = STRATEGIES.get(name)
            STRATEGIES[name] = strategy
            if reference_endpoint is not None:
                reference_endpoint.request("register_strategy", name=name, strategy=strategy)
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                STRATEGIES.pop(name, None)
            else:
                STRATEGIES[name] = old
            if reference_endpoint is not None:
                with contextlib.suppress(RemoteError):
                    reference_endpoint.request("unregister_strategy", name=name)


def run_check(check, mine: dict, reference: dict, strategies: dict | None = None,
              reference_endpoint=None) -> tuple[int, str]:
    """``(passed, hint)`` of ``check`` on the student's answers ``mine``."""
    args, notes = arguments(check, mine, reference)
    printed = io.StringIO()
    with CHECK_LOCK, contextlib.redirect_stdout(printed):
        try:
            with _strategies(strategies or {}, reference_endpoint):
                message = getattr(check, "__wrapped__", check)(**args)
            lines = printed.getvalue().strip().splitlines()
            passed = 1
            hint = message if isinstance(message, str) else (lines[-1] if lines else "")
        except ExerciseFailed as err:
            passed, hint = 0, str(err)
        except RemoteError as err:
            passed, hint = 0, f"your code could not be run by the grader: {err}"
        except Exception as err:  # noqa: BLE001 - a student's answer may break a check anyhow
            passed, hint = 0, f"your answer raised {type(err).__name__}: {err}"
    hint = "; ".join([hint, *notes]) if notes else hint
    return passed, hint[:HINT_CHARS]
