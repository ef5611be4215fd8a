"""Inside a graded kernel: hand the grader the answers a check is called with, then serve it.

When ``python -m diffusion_lab grade`` runs a notebook, the runner sets ``DIFFUSION_LAB_CAPTURE``
(the sandbox's outbox) in the kernel's environment. Every check, when called, first calls
`capture`: the check's arguments, bound to its parameters, are written as data (``codec``) to
``capture-N`` — the *answers* (the parameters its `checker` declares in ``answers``, ``own`` and
``rules``) from a student's kernel; every argument, models included, from the teacher edition's
kernel (``DIFFUSION_LAB_CAPTURE_MODE=reference``), which is where the grader takes the context
from. Then the check runs as usual, for the student's feedback only: what it prints or records is
never read by the grader, which runs its own copy (``classroom.judge``).

Nothing here decides a grade, so a student who rewrites this module gains nothing: they can only
change what their answers are, which is what they were free to do anyway.
"""

from __future__ import annotations

import inspect
import itertools
import os
from pathlib import Path

CAPTURE_ENV = "DIFFUSION_LAB_CAPTURE"  # the outbox folder
MODE_ENV = "DIFFUSION_LAB_CAPTURE_MODE"  # "student" (default) or "reference"
INBOX_ENV = "DIFFUSION_LAB_INBOX"

_state: dict = {"endpoint": None, "seq": itertools.count()}


def endpoint():
    """This kernel's end of the channel to the grader (None outside grading)."""
    from .rpc import Endpoint

    if _state["endpoint"] is None and os.environ.get(CAPTURE_ENV):
        reference = os.environ.get(MODE_ENV) == "reference"
        _state["endpoint"] = Endpoint(Path(os.environ[INBOX_ENV]), Path(os.environ[CAPTURE_ENV]),
                                      "kernel", export=True, trusted=True, full=reference,
                                      getattr_allowed=True)
    return _state["endpoint"]


def roles(fn) -> dict:
    """The grading roles a check declares: ``answers``, ``own`` (context the student's value of
    which is checked for consistency), ``rules`` (names of registered strategies)."""
    return getattr(fn, "grading", {"answers": (), "own": {}, "rules": ()})


def capture(label: str, fn, args: tuple, kwargs: dict) -> None:
    """Write the arguments of a call of check ``fn`` (for exercise ``label``) to the outbox."""
    end = endpoint()
    if end is None:
        return
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except TypeError:
        return  # the call itself will raise, and the grader reports the check as not run
    bound.apply_defaults()
    role = roles(fn)
    keep = set(role["answers"]) | set(role["own"]) | set(role["rules"])
    full = os.environ.get(MODE_ENV) == "reference"
    params = {k: v for k, v in bound.arguments.items() if full or k in keep}
    strategies = {}
    if role["rules"]:
        from ..registry import ALIASES, STRATEGIES

        for name in role["rules"]:
            value = params.get(name)
            if isinstance(value, str) and ALIASES.get(value, value) in STRATEGIES:
                strategies[value] = STRATEGIES[ALIASES.get(value, value)]
    n = next(_state["seq"])
    try:
        end._write(end.outbox, f"capture-{n}", {"label": label, "params": params,
                                                 "strategies": strategies})
    except Exception as err:  # noqa: BLE001 - an answer that cannot be written is reported
        end._write(end.outbox, f"capture-{n}", {"label": label, "error": f"{type(err).__name__}:"
                                                f" {err}"[:300]})


def serve() -> None:
    """Answer the grader's calls until it releases this kernel (the runner calls this)."""
    end = endpoint()
    if end is not None:
        end.serve()
