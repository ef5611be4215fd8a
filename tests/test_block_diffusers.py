"""diffusers' BlockRefinementScheduler driving the book's block model (diffusion_lab/
block_diffusers.py): at equal settings it commits the same tokens in the same steps as the
library's threshold rule; where the settings differ, the named differences show."""

from __future__ import annotations

import pytest
import torch

import diffusion_lab as dl
from diffusion_lab import block_diffusers, block_sampling
from diffusion_lab import block_diffusion as bd

pytest.importorskip("diffusers", minversion="0.39")


@pytest.fixture(scope="module")
def tok():
    return dl.worlds.grammar.book_language().tokenizer()


@pytest.fixture(scope="module")
def sharp_model(tok):
    """An untrained block model with its logits scaled up: confident, varied predictions, so a
    threshold commits several slots in some steps and one in others."""
    torch.manual_seed(0)
    model = bd.as_block_model(dl.tiny_ar(tok, "xs", 17), 4, True)
    with torch.no_grad():
        model.transformer.ln_f.weight.mul_(30.0)
    return model.eval()


@pytest.mark.parametrize("threshold", [0.5, 0.9])
def test_scheduler_commits_what_the_threshold_rule_commits(tok, sharp_model, threshold):
    prompts = ["", "the dog", "a", ""]
    ids, commits = block_diffusers.generate_with_scheduler(
        sharp_model, tok, prompts, length=16, threshold=threshold, temperature=0.0)
    run = block_sampling.generate_blocks(
        sharp_model, tok, prompts, length=16, steps=16, strategy="threshold",
        threshold=threshold, top_k=1, seed=0, stop=None)
    assert torch.equal(ids.cpu(), run.ids)
    ours = [f.revealed for f in run.frames]
    assert len(commits) == len(ours), "the same number of steps"
    assert all(torch.equal(a.cpu(), b) for a, b in zip(commits, ours, strict=True))
    several = sum(int(c.sum(1).max()) > 1 for c in commits)
    assert several >= 1, "some step committed several slots: the threshold was exercised"


def test_fewer_steps_than_the_block_commit_the_schedules_count(tok, sharp_model):
    """The named difference: with K < B steps the scheduler's floor is n_k = B / K slots a
    step, the library's threshold rule's floor is one."""
    _, commits = block_diffusers.generate_with_scheduler(
        sharp_model, tok, [""] * 3, length=16, steps_per_block=2, threshold=0.999)
    assert all(int(c.sum(1).min()) >= 2 for c in commits)
    run = block_sampling.generate_blocks(sharp_model, tok, [""] * 3, length=16, steps=8,
                                         strategy="threshold", threshold=0.999, top_k=1,
                                         seed=0, stop=None)
    assert min(int(f.revealed.sum(1).min()) for f in run.frames) == 1
