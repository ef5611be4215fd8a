"""The from-scratch MDLM (diffusion_lab/course/scratch.py, chapter 0) against the library.

Each check would fail if either side changed: the scratch loss and the library's ``mdlm`` loss
on the same batch, the same weights and the same noise agree to 1e-5; the scratch reveal rule and
the library's ``ancestral`` strategy reveal the same slots from the same uniforms; and the
chapter's code cells are the file's sections, word for word.
"""

from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import diffusion_lab as dl
from diffusion_lab.course import scratch
from diffusion_lab.tokenization import SPECIAL_TOKENS

ROOT = Path(__file__).resolve().parent.parent
CHAPTER = ROOT / "book" / "chapters" / "00_from_scratch" / "from_scratch.ipynb"
TOLERANCE = 1e-5  # nats per token


def sections(text: str) -> list[tuple[str, str]]:
    """The ``# %% title`` sections of a file: (title, code without the marker line)."""
    parts = text.split("\n# %% ")[1:]
    return [(part.split("\n", 1)[0], part.split("\n", 1)[1].strip("\n")) for part in parts]


def test_the_chapter_shows_the_file_word_for_word():
    """The chapter's code cells tagged ``scratch`` are the file's sections in order, all but the
    command-line entry point; so the notebook and ``python -m diffusion_lab.course.scratch`` cannot
    drift apart."""
    cells = json.loads(CHAPTER.read_text())["cells"]
    shown = ["".join(c["source"]) for c in cells
             if "scratch" in c.get("metadata", {}).get("tags", [])]
    wanted = sections((ROOT / "diffusion_lab" / "course" / "scratch.py").read_text())
    assert wanted[-1][0] == "From the command line"
    assert shown == [code for _, code in wanted[:-1]]


def test_imports_only_torch_and_the_grammar():
    tree = ast.parse((ROOT / "diffusion_lab" / "course" / "scratch.py").read_text())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    library = {name for name in names if name.split(".")[0] == "diffusion_lab"}
    assert library == {"diffusion_lab.worlds.grammar"}, "from the library, only the data"
    assert {name.split(".")[0] for name in names - library} <= {"argparse", "math", "torch"}


# ------------------------------------------------------------------ the loss
def _as_library(net):
    """The interface the library's losses read, ``model(input_ids=...).logits``, around a
    scratch denoiser (its own vocabulary: the words, then [MASK])."""
    return lambda input_ids: SimpleNamespace(logits=net(input_ids))


SCRATCH_INFO = dl.objectives.TokenInfo(mask_id=scratch.MASK, content_ids=torch.arange(scratch.V),
                                       banned_ids=torch.tensor([scratch.MASK]))


@pytest.mark.parametrize("batch, seed", [(64, 0), (7, 1), (256, 2)])
def test_scratch_loss_equals_the_library_loss_on_the_scratch_model(batch, seed):
    """The same denoiser, batch and noise: the library's ``mdlm_loss`` draws t (antithetic, from
    eps) and then the mask; the scratch loss is handed that t and draws the mask itself."""
    torch.manual_seed(seed)
    net = scratch.Denoiser()
    x = scratch.lang.sample_ids(batch, seed=seed)
    free = torch.zeros_like(x, dtype=torch.bool)  # no anchor column in the scratch rows
    theirs = dl.objectives.mdlm_loss(_as_library(net), x, free, SCRATCH_INFO,
                                     torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed)
    ours = scratch.mdlm_loss(net, x, dl.noise.sample_t(batch, generator=g), g)
    assert abs(theirs.item() - ours.item()) < TOLERANCE, (theirs.item(), ours.item())
    assert ours.item() > 1.0  # an untrained model: several nats per masked token


class Backbone(torch.nn.Module):
    """A library model (``dl.tiny_mlm`` on the grammar's tokenizer) seen through the scratch
    vocabulary: word w is token ``OFFSET + w``, [MASK] is the tokenizer's, and the logits are
    the words' (the special tokens, which the scratch model does not have, left out)."""

    OFFSET = len(SPECIAL_TOKENS)

    def __init__(self, model, tok):
        super().__init__()
        self.model, self.mask_id = model, tok.mask_token_id

    def forward(self, z):
        ids = torch.where(z == scratch.MASK, self.mask_id, z + self.OFFSET)
        words = self.model(input_ids=ids).logits[..., self.OFFSET:]  # (B, L, V)
        return torch.cat([words, torch.full_like(words[..., :1], -math.inf)], -1)  # SUBS


@pytest.fixture(scope="module")
def library_model():
    tok = scratch.lang.tokenizer()
    assert tok.convert_ids_to_tokens(Backbone.OFFSET) == scratch.lang.words[0]
    dl.seed_everything(0)
    return dl.tiny_mlm(tok, size="xs", max_length=scratch.L + 1).eval(), tok


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scratch_loss_equals_the_library_loss_on_a_library_model(library_model, seed):
    """The library's own entry point (``compute_loss("mdlm")``) on a ``dl.tiny_mlm``, and the
    scratch loss on the same network: equal to 1e-5 on the same batch and noise."""
    model, tok = library_model
    x = scratch.lang.sample_ids(64, seed=10 + seed)
    words = Backbone.OFFSET + torch.arange(scratch.V)
    info = dl.objectives.TokenInfo(mask_id=tok.mask_token_id, content_ids=words,
                                   banned_ids=torch.arange(Backbone.OFFSET))  # only words out
    theirs = dl.objectives.compute_loss("mdlm", model, x + Backbone.OFFSET, info,
                                        fixed=torch.zeros_like(x, dtype=torch.bool),
                                        generator=torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        ours = scratch.mdlm_loss(Backbone(model, tok), x, dl.noise.sample_t(64, generator=g), g)
    assert abs(theirs.item() - ours.item()) < TOLERANCE, (theirs.item(), ours.item())


def test_the_loss_check_fails_when_one_side_changes():
    """The equality above is sensitive: drop the scratch 1/t weight (exercise 3) and the two
    losses differ by far more than the tolerance."""
    torch.manual_seed(0)
    net = scratch.Denoiser()
    x = scratch.lang.sample_ids(64, seed=0)
    theirs = dl.objectives.mdlm_loss(_as_library(net), x, torch.zeros_like(x, dtype=torch.bool),
                                     SCRATCH_INFO, torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    unweighted = scratch.mdlm_loss(net, x, dl.noise.sample_t(64, generator=g), g,
                                   weight=torch.ones_like)
    assert abs(theirs.item() - unweighted.item()) > 100 * TOLERANCE


# ------------------------------------------------------------------ the sampler
def _library_reveal(z, t, s, g, schedule="linear"):
    """The library's ``ancestral`` rule for one step from t to s over every slot of z."""
    masked = z == scratch.MASK
    zeros = torch.zeros(z.shape, dtype=torch.float64)
    ctx = dl.strategies.StepContext(x=z, masked=masked, region=torch.ones_like(masked),
                                    proposal=z, p=zeros, conf=zeros, t=t, s=s, step=0, n=2,
                                    generator=g, options={"schedule": schedule})
    update, remask = dl.strategies.ancestral(ctx)
    assert not remask.any()
    return update


def _cosine(t):
    return 1 - math.sin(math.pi * t / 2)  # the library's "cosine": mask rate sin(pi t / 2)


@pytest.mark.parametrize("schedule, alpha", [("linear", scratch.alpha), ("cosine", _cosine)])
def test_reveal_is_the_library_ancestral_rule(schedule, alpha):
    """Same uniforms, same slots revealed, at every step of a 16-step grid and at odd (t, s):
    100,000 slots per step, so the two reveal probabilities agree to within about 1e-5."""
    g = torch.Generator().manual_seed(0)
    x = scratch.lang.sample_ids(1000, seed=3).repeat(6, 1)  # (6000, 16)
    grid = [(1 - i / 16, 1 - (i + 1) / 16) for i in range(16)] + [(0.9, 0.1), (0.3, 0.29)]
    for t, s in grid:
        hidden = torch.rand(x.shape, generator=g) < 0.7
        z = x.masked_fill(hidden, scratch.MASK)
        seed = int(torch.randint(0, 2**31, (1,), generator=g))
        theirs = _library_reveal(z, t, s, torch.Generator().manual_seed(seed), schedule)
        ours = scratch.reveal(z, t, s, torch.Generator().manual_seed(seed), alpha)
        assert torch.equal(theirs, ours), (t, s)
        want = (alpha(s) - alpha(t)) / (1 - alpha(t))
        rate = ours[hidden].double().mean().item()
        assert abs(rate - want) < 5 * math.sqrt(want * (1 - want) / hidden.sum()) + 1e-12
        assert not ours[~hidden].any(), "a visible slot is never revealed again"
    # and the check can fail: s / t instead of (t - s) / t reveals other slots
    z = x.masked_fill(torch.ones_like(x, dtype=torch.bool), scratch.MASK)
    wrong = lambda t: 1 - alpha(t)  # noqa: E731 - alpha and 1 - alpha swapped
    assert not torch.equal(_library_reveal(z, 0.75, 0.5, torch.Generator().manual_seed(0),
                                           schedule),
                           scratch.reveal(z, 0.75, 0.5, torch.Generator().manual_seed(0), wrong))


def test_generate_and_sample_reveal_at_the_same_rates(library_model):
    """Whole samplers: ``dl.generate(strategy="ancestral")`` and ``scratch.sample`` reveal, at
    step i of K, the fraction (t - s) / t of the slots still masked (t = 1 - i/K), each within
    5 standard errors over 400 rows x 16 slots."""
    model, tok = library_model
    K, rows = 8, 400
    traj = dl.generate(model, tok, prompts=[""], length=scratch.L, steps=K, strategy="ancestral",
                       seed=0, num_samples=rows)
    library = [frame.mask[:, 1:] for frame in [traj.start, *traj.frames]]  # anchor dropped
    seen = []

    def recording_reveal(z, t, s, g, alpha):
        out = scratch.reveal(z, t, s, g, alpha)
        seen.append((z == scratch.MASK, out))
        return out

    scratch.sample(scratch.Denoiser(), rows, steps=K, seed=0, reveal=recording_reveal)
    for i in range(K):
        t, s = 1 - i / K, 1 - (i + 1) / K
        want = (t - s) / t
        before, after = library[i], library[i + 1]
        lib_rate = (before & ~after).sum().item() / before.sum().item()
        masked, revealed = seen[i]
        our_rate = revealed.sum().item() / masked.sum().item()
        for rate, n in ((lib_rate, before.sum().item()), (our_rate, masked.sum().item())):
            assert abs(rate - want) <= 5 * math.sqrt(want * (1 - want) / n) + 1e-12, (i, rate)
    assert not library[-1].any() and len(seen) == K


# ------------------------------------------------------------------ the model and the script
def test_subs_never_predicts_mask_and_copies_visible_tokens():
    torch.manual_seed(0)
    net = scratch.Denoiser()
    z = scratch.lang.sample_ids(8, seed=0).masked_fill(torch.rand(8, scratch.L) < 0.5,
                                                       scratch.MASK)
    probs = net(z).softmax(-1)
    assert probs[..., scratch.MASK].max() == 0 and torch.allclose(probs.sum(-1), torch.ones(8, 16))
    out = scratch.sample(net, 50, steps=4, seed=1)
    assert not (out == scratch.MASK).any() and out.shape == (50, scratch.L)
    step = scratch.reveal(z, 0.5, 0.25, torch.Generator().manual_seed(0))
    assert not step[z != scratch.MASK].any()


def test_training_lowers_the_loss():
    g = torch.Generator().manual_seed(5)
    x = scratch.lang.sample_ids(512, seed=5)
    t = torch.rand(512, generator=g, dtype=torch.float64).clamp(min=0.05)
    state = g.get_state()

    def held_out(model):
        g.set_state(state)
        with torch.no_grad():
            return scratch.mdlm_loss(model, x, t, g).item()

    before = held_out(scratch.Denoiser())
    after = held_out(scratch.train(steps=60, seed=0, log_every=0))
    assert after < before - 0.5, (before, after)


def test_command_line_prints_samples_and_validity():
    out = subprocess.run([sys.executable, "-m", "diffusion_lab.course.scratch", "--steps", "3",
                          "--samples", "20"], capture_output=True, text=True, cwd=ROOT,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "validity:" in out.stdout and "of 20 sampled sentences" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "diffusion_lab.course.scratch", "--steps", "0"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert bad.returncode == 2 and "--steps" in bad.stderr
