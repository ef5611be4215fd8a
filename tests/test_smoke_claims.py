"""On the smoke profile a chapter's asserts are reported, not enforced (notebook.setup)."""

from __future__ import annotations

import ast

import pytest

from diffusion_lab.course import notebook


def _run_rewritten(code: str) -> dict:
    tree = ast.fix_missing_locations(notebook._ReportAsserts().visit(ast.parse(code)))
    scope: dict = {}
    exec(compile(tree, "<cell>", "exec"), scope)
    return scope


def test_failed_claim_is_reported_and_the_cell_goes_on(capsys):
    notebook.reported_claims.clear()
    scope = _run_rewritten("gap = 0.1\nassert gap > 0.3, 'the gap must be large'\nafter = 1\n")
    assert scope["after"] == 1
    assert notebook.reported_claims == ["gap > 0.3 (the gap must be large)"]
    assert "claim not enforced (smoke): gap > 0.3" in capsys.readouterr().out
    _run_rewritten("assert 2 > 1\n")  # a claim that holds stays silent
    assert len(notebook.reported_claims) == 1


def test_mode_follows_the_profile_and_the_env(monkeypatch):
    monkeypatch.delenv("DIFFUSION_LAB_CLAIMS", raising=False)
    assert notebook.claims_mode("smoke") == "report"
    assert notebook.claims_mode("cpu") == notebook.claims_mode("gpu") == "enforce"
    monkeypatch.setenv("DIFFUSION_LAB_CLAIMS", "enforce")
    assert notebook.claims_mode("smoke") == "enforce"
    monkeypatch.setenv("DIFFUSION_LAB_CLAIMS", "loose")
    with pytest.raises(ValueError, match="DIFFUSION_LAB_CLAIMS must be one of"):
        notebook.claims_mode("cpu")


def test_a_ledger_claim_is_reported_on_smoke(capsys):
    notebook._set_claims("report")
    try:
        record = notebook.claim("t_smoke", "a gap", 0.1, holds=False, bound="> 0.3")
        assert record["holds"] is False
        assert "claim not enforced (smoke): t_smoke" in capsys.readouterr().out
    finally:
        notebook._set_claims("enforce")
    with pytest.raises(AssertionError, match="t_smoke"):
        notebook.claim("t_smoke", "a gap", 0.1, holds=False, bound="> 0.3")
