"""Sphinx extension: the "Claims and evidence" page, built from the executed chapters.

A chapter states a claim with ``dl.notebook.claim(key, statement, value, holds=..., bound=...)``:
the call asserts it, glues the value into the prose and displays a hidden HTML element that
carries the record (claim, measured value, bound, sample, test, p-value).  This extension

* ``doctree-read``: collects those records from every executed notebook's doctree (and
  removes the hidden elements), and **fails the build** when a notebook's code calls
  ``dl.notebook.claim("key", ...)`` for a key its executed output does not carry (a claim the
  ledger would not list: output removed by a tag, a stale execution cache, a skipped cell);
* ``claims-ledger`` directive: a placeholder that ``doctree-resolved`` replaces by one table
  row per claim, in the order of the table of contents, each linking to its chapter;
* re-writes the ledger page on every build, since any chapter may have changed it.

Registered in ``_config.yml`` under ``sphinx: local_extensions: {claims_ledger: book/_ext}``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util.docutils import SphinxDirective

CLAIM_CALL = re.compile(r"""dl\.notebook\.claim\(\s*(?:key\s*=\s*)?["']([A-Za-z][\w]*)["']""")
COLUMNS = ("Claim", "Chapter", "Measured", "Bound", "Over", "Test", "Exact?", "p-value")
LEDGER_DOCS_KEY = "dl_claims_ledger_docs"


class ledger_placeholder(nodes.General, nodes.Element):  # noqa: N801 (docutils node naming)
    """Where the ledger table goes once every chapter has been read."""


class ClaimsLedger(SphinxDirective):
    """``{claims-ledger}``: the table of every claim the chapters assert."""

    has_content = False

    def run(self):
        setattr(self.env, LEDGER_DOCS_KEY, getattr(self.env, LEDGER_DOCS_KEY, set())
                | {self.env.docname})
        return [ledger_placeholder()]


def claim_keys_in_source(path: Path) -> list[str]:
    """Keys of every ``dl.notebook.claim("key", ...)`` call in the code cells of a notebook."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    keys = []
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else source
            keys += CLAIM_CALL.findall(source)
    return keys


def records_in_html(text: str) -> list[dict]:
    """The claim records carried by hidden elements in a raw HTML output (the library's own
    parser: `diffusion_lab.course.notebook.parse_claims`)."""
    from diffusion_lab.course.notebook import parse_claims

    return parse_claims(text)


def collect(app: Sphinx, doctree: nodes.document) -> None:
    env = app.env
    docname = env.docname
    records = []
    for raw in list(doctree.findall(nodes.raw)):
        found = records_in_html(raw.astext())
        if found:
            records += found
            raw.parent.remove(raw)
    env.dl_claims = getattr(env, "dl_claims", {})
    env.dl_claims.pop(docname, None)
    if records:
        env.dl_claims[docname] = records
    source = Path(env.doc2path(docname))
    if source.suffix == ".ipynb":
        stated = claim_keys_in_source(source)
        listed = {r["key"] for r in records}
        missing = [k for k in stated if k not in listed]
        if missing:
            raise ExtensionError(
                f"claims_ledger: {docname} asserts claims the ledger does not list: {missing}. "
                "Their output is missing from the executed notebook (a remove-output tag, a "
                "stale cache, or a cell that did not run).")
        failed = [r["key"] for r in records if not r.get("holds", False)]
        if failed:
            raise ExtensionError(f"claims_ledger: {docname}: claims that do not hold: {failed}")


def purge(app: Sphinx, env, docname: str) -> None:
    getattr(env, "dl_claims", {}).pop(docname, None)


def merge(app: Sphinx, env, docnames, other) -> None:
    env.dl_claims = getattr(env, "dl_claims", {})
    env.dl_claims.update({d: r for d, r in getattr(other, "dl_claims", {}).items()
                          if d in docnames})
    setattr(env, LEDGER_DOCS_KEY, getattr(env, LEDGER_DOCS_KEY, set())
            | getattr(other, LEDGER_DOCS_KEY, set()))


def always_rewrite(app: Sphinx, env, added, changed, removed) -> list[str]:
    return sorted(getattr(env, LEDGER_DOCS_KEY, set()))


def _doc_order(env) -> list[str]:
    """Documents in table-of-contents order (depth first from the root)."""
    order, seen = [], set()

    def walk(doc):
        if doc in seen:
            return
        seen.add(doc)
        order.append(doc)
        for child in env.toctree_includes.get(doc, []):
            walk(child)

    walk(env.config.root_doc)
    return order + sorted(d for d in env.found_docs if d not in seen)


def _cell(content) -> nodes.entry:
    entry = nodes.entry()
    para = nodes.paragraph()
    para += content if isinstance(content, nodes.Node) else nodes.Text(str(content))
    entry += para
    return entry


def build_table(app: Sphinx, fromdocname: str) -> nodes.Node:
    env = app.env
    claims = getattr(env, "dl_claims", {})
    table = nodes.table(classes=["claims-ledger"])
    group = nodes.tgroup(cols=len(COLUMNS))
    table += group
    for width in (28, 13, 9, 9, 15, 14, 7, 7):
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    row = nodes.row()
    for title in COLUMNS:
        row += _cell(title)
    head += row
    group += head
    body = nodes.tbody()
    group += body
    count = 0
    for docname in _doc_order(env):
        for record in claims.get(docname, []):
            row = nodes.row()
            title = env.titles[docname].astext() if docname in env.titles else docname
            link = nodes.reference("", title, internal=True,
                                   refuri=app.builder.get_relative_uri(fromdocname, docname))
            p_value = record.get("p_value")
            measured = f"{record['value']} {record.get('units', '')}".strip()
            for content in (record["claim"], link, measured, record.get("bound", ""),
                            record.get("sample", ""), record.get("test", ""),
                            record.get("exactness", "—"),
                            "—" if p_value is None else
                            (f"{p_value:.1e}" if p_value < 1e-3 else f"{p_value:.3f}")):
                row += _cell(content)
            body += row
            count += 1
    if not count:
        raise ExtensionError("claims_ledger: no chapter recorded a claim; were the notebooks "
                             "executed?")
    return table


def resolve(app: Sphinx, doctree: nodes.document, fromdocname: str) -> None:
    for node in list(doctree.findall(ledger_placeholder)):
        node.replace_self(build_table(app, fromdocname))


def setup(app: Sphinx) -> dict:
    app.add_node(ledger_placeholder)
    app.add_directive("claims-ledger", ClaimsLedger)
    app.connect("doctree-read", collect)
    app.connect("env-purge-doc", purge)
    app.connect("env-merge-info", merge)
    app.connect("env-get-outdated", always_rewrite)
    app.connect("doctree-resolved", resolve)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True,
            "env_version": 1}
