"""The claims ledger: ``dl.notebook.claim`` asserts and records, and the Sphinx extension
(``book/_ext/claims_ledger.py``) lists every claim and fails a build that would miss one."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import diffusion_lab as dl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import claims_ledger  # noqa: E402

CHAPTERS = sorted((ROOT / "book" / "chapters").glob("*/*.ipynb"))


def test_claim_records_and_round_trips():
    record = dl.notebook.claim("t_ok", "a holds", 1.5, holds=True, bound="> 1", units="bits",
                               sample="3 rows", test="threshold", p_value=0.02)
    assert record["holds"] and record["value"] == "1.50" and record["p_value"] == 0.02
    assert dl.notebook.parse_claims(dl.notebook.claim_html(record)) == [record]
    assert claims_ledger.records_in_html(dl.notebook.claim_html(record)) == [record]


@pytest.mark.parametrize("test, expected", [
    ("threshold", "no test"), ("one-sided exact sign test over puzzles", "exact"),
    ("Student's paired t-test, two-sided, exact p (n - 1 df)", "exact"),
    ("paired bootstrap over blocks", "approximate"),
    ("equivalence (two one-sided z-tests), normal approximation", "approximate")])
def test_the_ledger_says_whether_a_test_is_exact(test, expected):
    record = dl.notebook.claim("t_exact", "c", 1.0, holds=True, bound="> 0", test=test)
    assert record["exactness"] == expected
    row = claims_ledger.records_in_html(dl.notebook.claim_html(record))[0]
    assert row["exactness"] == expected and "Exact?" in claims_ledger.COLUMNS


def test_a_test_that_does_not_say_what_it_is_needs_exact():
    with pytest.raises(ValueError, match="exact"):
        dl.notebook.claim("t_vague", "c", 1.0, holds=True, bound="> 0", test="paired test")
    record = dl.notebook.claim("t_vague", "c", 1.0, holds=True, bound="> 0", test="paired test",
                               exact=False)
    assert record["exactness"] == "approximate"


def test_claim_that_fails_raises_with_the_numbers():
    with pytest.raises(AssertionError, match=r"t_bad.*0\.50.*> 1"):
        dl.notebook.claim("t_bad", "b holds", 0.5, holds=False, bound="> 1")


@pytest.mark.parametrize("kwargs, error", [
    ({"key": "1bad"}, ValueError), ({"key": "has space"}, ValueError),
    ({"holds": "yes"}, TypeError), ({"statement": ""}, ValueError),
    ({"p_value": 1.5}, ValueError)])
def test_claim_rejects_bad_input(kwargs, error):
    args = {"key": "k", "statement": "s", "value": 1.0, "holds": True, "bound": "> 0"}
    args.update(kwargs)
    with pytest.raises(error):
        dl.notebook.claim(args.pop("key"), args.pop("statement"), args.pop("value"), **args)


def test_source_scan_finds_claim_keys(tmp_path):
    nb = {"cells": [{"cell_type": "code", "source": ['x = 1\n', 'dl.notebook.claim("k1", "s",\n']},
                    {"cell_type": "markdown", "source": 'dl.notebook.claim("not_code", ...)'},
                    {"cell_type": "code", "source": "dl.notebook.claim(\n    'k2', 's', 1)"}]}
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps(nb))
    assert claims_ledger.claim_keys_in_source(path) == ["k1", "k2"]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_states_claims_the_ledger_can_find(path):
    """Each chapter asserts at least one claim through ``dl.notebook.claim``, with unique keys,
    and never in a cell whose output the book removes (the ledger reads the output)."""
    keys = claims_ledger.claim_keys_in_source(path)
    assert keys, f"{path.name}: no dl.notebook.claim(...)"
    assert len(keys) == len(set(keys)), f"{path.name}: duplicate claim keys {keys}"
    for cell in json.loads(path.read_text())["cells"]:
        source = "".join(cell["source"])
        if "dl.notebook.claim(" in source:
            tags = cell.get("metadata", {}).get("tags", [])
            assert not {"remove-output", "remove-cell"} & set(tags), (path.name, tags)


def _sphinx_project(tmp_path: Path, notebook_outputs: list[dict]) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT / 'book' / '_ext')!r})\n"
        "extensions = ['myst_nb', 'claims_ledger']\n"
        "nb_execution_mode = 'off'\n"
        "exclude_patterns = ['_build']\n")
    (src / "index.md").write_text("# Book\n\n```{toctree}\nchapter\nclaims\n```\n")
    (src / "claims.md").write_text("# Claims and evidence\n\n```{claims-ledger}\n```\n")
    cell = {"cell_type": "code", "execution_count": 1, "id": "c1", "metadata": {},
            "source": 'dl.notebook.claim("t_one", "one holds", 2.0, holds=True, bound="> 1")',
            "outputs": notebook_outputs}
    nb = {"cells": [{"cell_type": "markdown", "id": "m1", "metadata": {},
                     "source": "# A chapter"}, cell],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                      "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    (src / "chapter.ipynb").write_text(json.dumps(nb))
    return src


def _build(src: Path) -> int:
    pytest.importorskip("myst_nb")
    from sphinx.cmd.build import build_main

    return build_main(["-b", "html", "-q", str(src), str(src / "_build")])


def test_extension_builds_the_ledger_page(tmp_path):
    record = {"key": "t_one", "claim": "one holds", "value": "2.00", "bound": "> 1",
              "units": "bits", "sample": "9 rows", "test": "threshold", "holds": True,
              "p_value": 0.004}
    output = {"output_type": "display_data", "metadata": {},
              "data": {"text/html": dl.notebook.claim_html(record), "text/plain": "<HTML>"}}
    src = _sphinx_project(tmp_path, [output])
    assert _build(src) == 0
    page = (src / "_build" / "claims.html").read_text()
    assert "one holds" in page and "2.00 bits" in page and "9 rows" in page and "0.004" in page
    assert 'href="chapter.html"' in page
    assert "dl-claim" not in (src / "_build" / "chapter.html").read_text()


def test_extension_fails_a_build_that_misses_a_claim(tmp_path, capsys):
    src = _sphinx_project(tmp_path, [])  # the claim's output is missing
    assert _build(src) != 0
    assert "asserts claims the ledger does not list: ['t_one']" in capsys.readouterr().err
