"""The teacher's page has a glossary (a MyST definition list). Every term a chapter uses before
or without defining it has an entry there: the list issue 26 found, and the terms the book leans
on. A term removed from the glossary fails here."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]

TERMS = [
    "SUBS", "KV cache", "total variation", "bootstrap", "McNemar's test", "Gumbel temperature",
    "ReMDM's $\\eta$", "saddle", "template", "revisable token", "oracle", "factorisation error",
    "validity", "SFT", "`[EOS]`", "threshold decoding", "any-order autoregressive model",
    "ELBO", "ancestral sampler", "forward process", "remask", "confidence",
]


def glossary() -> dict[str, str]:
    nb = nbformat.read(ROOT / "book" / "teacher.ipynb", as_version=4)
    text = next(c.source for c in nb.cells
                if c.cell_type == "markdown" and c.source.startswith("## Glossary"))
    # a definition list: a term line, then ": definition" (continued by indented lines)
    entries = re.findall(r"^(\S[^\n]*)\n: ((?:[^\n]*\n?)(?:  [^\n]*\n?)*)", text, re.M)
    return {term.strip(): body.strip() for term, body in entries}


def test_the_glossary_parses_into_many_entries():
    assert len(glossary()) >= 30


@pytest.mark.parametrize("term", TERMS)
def test_term_has_an_entry(term):
    entries = glossary()
    match = [t for t in entries if t == term or t.startswith(term + " ")]
    assert match, f"the glossary has no entry for {term!r}"
    assert len(entries[match[0]]) > 40, f"{term!r}: the entry is too short to define it"
