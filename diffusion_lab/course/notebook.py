"""Small conveniences for the book's notebooks: one-line set-up, ``glue`` and ``claim``.

Every chapter starts with ``prof = dl.notebook.setup(seed=0)``: it seeds every generator, picks
the run profile, silences the progress bars and warnings that ``transformers`` would otherwise
print into the page, sets readable figure defaults and torch's thread count
(`runtime.apply_threads`).

Claims on the smoke profile: a chapter asserts what it teaches (``assert gap > 0.3``), but a
smoke-size model trained for seconds cannot show it. On ``smoke`` (or with
``DIFFUSION_LAB_CLAIMS=report``) `setup` makes the kernel run every later ``assert`` statement as
a *reported* check: a failing one prints ``claim not enforced (smoke): ...`` and the cell goes on,
so every code path still runs (the Colab-like CI job relies on it). On ``cpu`` and ``gpu`` (or with
``DIFFUSION_LAB_CLAIMS=enforce``) asserts raise as written.
"""

from __future__ import annotations

import ast
import html
import json
import os
import re
import warnings

from ..runtime import apply_threads, get_device, seed_everything
from .profiles import Profile, profile


def setup(seed: int = 0, profile_name: str | None = None) -> Profile:
    """Seed everything, silence library noise, set figure defaults; return the run profile."""
    import matplotlib as mpl
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*past_key_values.*")
    mpl.rcParams.update({"figure.dpi": 100, "figure.figsize": (7, 3.5), "axes.grid": True,
                         "grid.alpha": 0.3, "axes.spines.top": False,
                         "axes.spines.right": False})
    seed_everything(seed)
    prof = profile(profile_name)
    threads = apply_threads()
    claims = claims_mode(prof.name)
    _set_claims(claims)
    print(f"profile: {prof.name} ({prof.model_size} model, seq_len {prof.seq_len}, "
          f"{prof.train_steps} training steps) on {get_device()}, {threads} torch thread"
          f"{'s' if threads > 1 else ''}" + ("; claims reported, not enforced" if claims ==
                                              "report" else ""))
    return prof


CLAIM_MODES = ("enforce", "report")
reported_claims: list[str] = []  # the claims that failed while not enforced, in order


def claims_mode(profile_name: str) -> str:
    """``DIFFUSION_LAB_CLAIMS`` if set, else ``"report"`` on smoke and ``"enforce"`` otherwise."""
    mode = os.environ.get("DIFFUSION_LAB_CLAIMS", "").strip()
    if not mode:
        return "report" if profile_name == "smoke" else "enforce"
    if mode not in CLAIM_MODES:
        raise ValueError(f"DIFFUSION_LAB_CLAIMS must be one of {CLAIM_MODES}, got {mode!r}")
    return mode


def report_claim(ok, message, source: str) -> None:
    """What a rewritten ``assert`` calls: print (and remember) a failed claim, never raise."""
    if not ok:
        text = f"{source}" + (f" ({message})" if message is not None else "")
        reported_claims.append(text)
        print(f"claim not enforced (smoke): {text}")


class _ReportAsserts(ast.NodeTransformer):
    """``assert test, msg`` -> ``report_claim(test, msg, "<source of test>")``."""

    def visit_Assert(self, node: ast.Assert):
        func = ast.parse("__import__('diffusion_lab.course.notebook').course.notebook.report_claim",
                         mode="eval").body
        call = ast.Call(func=func, args=[node.test, node.msg or ast.Constant(None),
                                         ast.Constant(ast.unparse(node.test))], keywords=[])
        return ast.copy_location(ast.Expr(call), node)


_mode = {"claims": "enforce"}  # what `setup` chose; `claim` reads it too


def claims_reported() -> bool:
    """True when this kernel reports failed claims instead of raising (`claims_mode`)."""
    return _mode["claims"] == "report"


def _set_claims(mode: str) -> None:
    """Install (``"report"``) or remove (``"enforce"``) the assert rewriting in this kernel."""
    _mode["claims"] = mode
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    shell.ast_transformers[:] = [t for t in shell.ast_transformers
                                 if not isinstance(t, _ReportAsserts)]
    if mode == "report":
        shell.ast_transformers.append(_ReportAsserts())


def glue(name: str, value, fmt: str = "{:.2f}") -> None:
    """Put a measured number into the prose (``{glue:}`name``` in Markdown) via myst-nb.

    Outside a book build (e.g. Colab without myst-nb) it just displays the value.
    """
    text = fmt.format(value) if fmt else str(value)
    try:
        from myst_nb import glue as _glue
    except ImportError:
        print(f"{name} = {text}")
        return
    _glue(name, _Shown(text), display=False)


class _Shown:
    """A value whose text/plain form is exactly ``text`` (a str would be shown with quotes)."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


CLAIM_CLASS = "dl-claim"  # the book's claims_ledger extension collects these elements
# The element `claim_html` writes, as found in a built page (``book/_ext/claims_ledger.py``).
CLAIM_SPAN = re.compile(rf'<span class="{CLAIM_CLASS}" hidden data-claim="([^"]*)"></span>')
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def exactness_of(test: str) -> str:
    """``"exact"``, ``"approximate"`` or ``"no test"`` for a claim's ``test`` text: a bare
    threshold on the measured value is no test; a name that says "exact" is exact; a bootstrap,
    a z-test or anything named an approximation is approximate.  Anything else is an error: say
    which it is with ``claim(..., exact=...)``."""
    text = test.lower()
    if text.strip() == "threshold":
        return "no test"
    if "approximat" in text or "bootstrap" in text or "z-test" in text:
        return "approximate"
    if "exact" in text:
        return "exact"
    raise ValueError(f"test={test!r} does not say whether it is exact: name it (e.g. 'exact "
                     "sign test', 'percentile bootstrap') or pass exact=True/False")


def claim(key: str, statement: str, value: float, *, holds: bool, bound: str, units: str = "",
          sample: str = "", test: str = "threshold", p_value: float | None = None,
          fmt: str = "{:.2f}", exact: bool | None = None) -> dict:
    """Assert one of a chapter's claims, glue its measured value and record it for the ledger.

    ``holds`` is the chapter's test, evaluated by the caller (``holds=gain > 0.2``) with
    ``bound`` its human-readable form ("> 0.2"); ``sample`` says what was measured over (e.g.
    "200 puzzles, 3 seeds averaged per puzzle"), ``test`` how ("threshold", "one-sided sign
    test per puzzle", ...), ``p_value`` its p-value where there is one; ``exact`` says whether
    the test's p-value or interval is exact (an exact sign test, Student's t with its exact
    distribution) or an approximation (a bootstrap, a normal approximation) — by default
    `exactness_of` reads it from ``test``, which must then name the test.  The value is glued
    under ``key`` (``{glue:}`key``` in the prose); the record is displayed as a hidden HTML
    element that the book's ``claims_ledger`` extension turns into the "Claims and evidence"
    page.  Raises ``AssertionError`` (after recording) when the claim does not hold, unless
    claims are reported rather than enforced (the smoke profile: see `claims_mode`).
    """
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError(f"key must be an identifier-like str (letters, digits, _), got {key!r}")
    if not isinstance(holds, bool):
        try:  # numpy / torch booleans
            holds = bool(holds.item()) if hasattr(holds, "item") else None
        except (TypeError, ValueError):
            holds = None
        if holds is None:
            raise TypeError("holds must be a bool (the claim's test, evaluated)")
    if not isinstance(statement, str) or not statement.strip():
        raise ValueError(f"statement must be a non-empty str, got {statement!r}")
    value = float(value)
    if p_value is not None and not 0.0 <= float(p_value) <= 1.0:
        raise ValueError(f"p_value must be in [0, 1] or None, got {p_value!r}")
    glue(key, value, fmt)
    record = {"key": key, "claim": statement, "value": fmt.format(value), "bound": bound,
              "units": units, "sample": sample, "test": test, "holds": holds,
              "p_value": None if p_value is None else float(p_value),
              "exactness": exactness_of(test) if exact is None else
              ("exact" if exact else "approximate")}
    _show_record(record)
    if not holds and claims_reported():
        report_claim(False, f"measured {record['value']} {units}, required {bound}", key)
    elif not holds:
        raise AssertionError(f"claim {key!r} does not hold: {statement} (measured "
                             f"{record['value']} {units}, required {bound})")
    return record


def claim_html(record: dict) -> str:
    """The hidden element that carries ``record`` into the built page."""
    payload = html.escape(json.dumps(record, allow_nan=True), quote=True)
    return f'<span class="{CLAIM_CLASS}" hidden data-claim="{payload}"></span>'


def parse_claims(text: str) -> list[dict]:
    """Every record ``claim_html`` wrote into ``text`` (HTML)."""
    return [json.loads(html.unescape(m)) for m in CLAIM_SPAN.findall(text)]


def _show_record(record: dict) -> None:
    try:
        from IPython.display import HTML, display
    except ImportError:
        return
    display(HTML(claim_html(record)))
