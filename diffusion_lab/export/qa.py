"""What the question-answering panel (``book/_static/live/qa.js``) needs beyond `export.settings`.

Chapter 8's experiment in the browser: the reader asks a question of ``dl.qa``'s families, may
force the first answer token to the wrong verdict ("no" for a true claim, "yes" for a false one)
and watches a revising strategy take it back.  The export of ``kind="qa"`` (the zoo's QA
diffusion model, ``zoo.pretrained_qa("diffusion")``) adds to its JSON

* ``defaults``: the chapter's decoding — ``reread_remask`` (the re-read rule: a decoded token
  re-scored in the present context at every step), greedy (temperature 0, the
  chapter's ``top_k=1``), one step per free slot of the shortest test question, seed 0;
* ``qa``: the families' patterns (``dl.qa.FAMILIES``; a question matching none is refused with a
  message), the forced verdicts and a few example questions from the chapter's own lists.
"""

from __future__ import annotations

from ..models import max_positions
from ..worlds import qa


def qa_settings(model, tok) -> dict:
    """``{"defaults": ..., "qa": ...}`` merged into the QA export's JSON (see the module)."""
    length = max_positions(model) - 1  # the chapter's LENGTH: every position but the anchor
    test = [q for q, _ in qa.pairs(150, seed=1)]  # the chapter's 150 test questions
    steps = length - min(len(tok(q, add_special_tokens=False)["input_ids"]) for q in test)
    claims = list(dict.fromkeys(q for q, _ in qa.pairs(400, seed=2, families=("claims",))))
    true = [q for q in claims if qa.Claims.is_true(q)][:4]
    false = [q for q in claims if not qa.Claims.is_true(q)][:2]
    others = [q for q in test if not qa.Claims().owns(q)][:3]
    return {
        "defaults": {"length": length, "steps": steps, "strategy": "reread_remask",
                     "temperature": 0.0, "seed": 0, "profile": None},
        "qa": {"families": {name: f.pattern.pattern for name, f in qa.FAMILIES.items()},
               "claims": "claims", "forced": {"true": "no", "false": "yes"},
               "examples": true + false + others},
    }
