"""What a live panel of a grammar model adds to its export: the grammar's exact membership test.

The book's grammar gives every word one part of speech, so a sentence is in the language exactly
when the sequence of its words' categories (after dropping the trailing ``[EOS]`` padding, at most
``max_len`` words, no special token) is one of the grammar's templates
(`worlds.grammar.Grammar.log_prob_ids` is that test with probabilities). The panel's
``grammar.js`` runs the same test on the sentence the model wrote, so a reader sees at once whether
it is grammatical — no judge model involved. ``tests/test_live_grammar.py`` checks the JavaScript
against `Grammar.is_valid` on sampled and corrupted sentences.
"""

from __future__ import annotations

from ..worlds import grammar


def grammar_settings(lang: grammar.Grammar | None = None) -> dict:
    """``{"grammar": {"category", "templates", "max_len", "eos"}}`` for the export's JSON."""
    lang = lang or grammar.book_language()
    return {"grammar": {
        "category": {w: lang.category_of[w] for w in lang.words},
        "templates": sorted(" ".join(t) for t in lang.templates),
        "max_len": lang.max_len,
        "eos": grammar.EOS,
    }}
