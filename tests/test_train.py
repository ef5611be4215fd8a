"""The training loop: it learns, it reports, it saves, and it survives an interruption.

The resume test is the promise of `diffusion_lab.train` to a Colab reader: a run cut off and
resumed from its last checkpoint ends with the same weights and the same loss curve as a run that
was never interrupted.
"""

from __future__ import annotations

import math

import pytest
import torch

import diffusion_lab as dl
from diffusion_lab.train import lr_at

TEXT = "abcdefgh " * 300
HELD_OUT = "abcdefgh " * 40



@pytest.fixture(scope="module")
def tok():
    return dl.CharTokenizer.from_texts(["abcdefgh \n"])


def fresh(tok, kind: str = "mlm", seed: int = 0):
    torch.manual_seed(seed)
    return (dl.tiny_ar if kind == "ar" else dl.tiny_mlm)(tok, size="xs", max_length=64)


QUICK = dict(batch_size=16, seq_len=32, lr=1e-2, warmup=5, seed=0, progress=False, device="cpu")


def test_mdlm_loss_decreases_on_a_repetitive_corpus(tok):
    model = fresh(tok)
    before = dl.metrics.bits_per_token(model, tok, HELD_OUT, seq_len=32, seed=0)
    hist = dl.train(model, tok, TEXT, objective="mdlm", steps=40, **QUICK)
    after = dl.metrics.bits_per_token(model, tok, HELD_OUT, seq_len=32, seed=0)
    # measured: held-out ELBO 3.95 -> 3.35 bits, training loss 2.53 -> 2.17 nats
    assert after < before - 0.3
    assert sum(hist.loss[-10:]) / 10 < sum(hist.loss[:5]) / 5 - 0.15
    assert not model.training  # left in eval mode


def test_ar_loss_collapses_on_a_periodic_corpus(tok):
    hist = dl.train(fresh(tok, "ar"), tok, TEXT, objective="ar", steps=40, **QUICK)
    # measured: 2.25 -> 0.18 nats (the next character of "abcdefgh " is determined)
    assert hist.final_loss(5) < 0.5 < math.log(9) < hist.loss[0]


def test_history_fields(tok):
    steps, warmup, lr = 20, 5, 1e-2
    hist = dl.train(fresh(tok), tok, TEXT, objective="mdlm", steps=steps,
                    **{**QUICK, "warmup": warmup, "lr": lr})
    assert hist.objective == "mdlm" and hist.steps == steps and len(hist.lr) == steps
    assert all(math.isfinite(v) and v > 0 for v in hist.loss)
    rising, falling = hist.lr[:warmup], hist.lr[warmup - 1:]
    assert all(a < b for a, b in zip(rising, rising[1:], strict=False))  # warmup
    assert hist.lr[warmup - 1] == pytest.approx(lr)
    assert all(a >= b for a, b in zip(falling, falling[1:], strict=False))  # then decay
    assert hist.lr[-1] < lr / 2
    assert hist.tokens == steps * 16 * 32
    assert hist.seconds > 0 and hist.tokens_per_s > 0
    assert hist.final_loss(5) == pytest.approx(sum(hist.loss[-5:]) / 5)


def test_lr_schedule_values():
    assert lr_at(0, 100, 1.0, 10) == pytest.approx(0.1)
    assert lr_at(9, 100, 1.0, 10) == pytest.approx(1.0)
    assert lr_at(10, 100, 1.0, 10) == pytest.approx(1.0)
    assert lr_at(55, 100, 1.0, 10) == pytest.approx(0.55)  # half way down the cosine
    assert lr_at(100, 100, 1.0, 10) == pytest.approx(0.1)  # floor: 10% of lr


def test_save_load_round_trip(tok, tmp_path):
    for kind in ("mlm", "ar"):
        model = fresh(tok, kind).eval()
        dl.models.save(model, tok, tmp_path / kind)
        loaded, tok2 = dl.models.load(tmp_path / kind)
        assert type(loaded) is type(model)
        ids = torch.tensor([[tok.cls_token_id] + tok("abc[MASK]de", add_special_tokens=False)
                            ["input_ids"]])
        with torch.no_grad():
            assert torch.equal(model(input_ids=ids).logits, loaded.eval()(input_ids=ids).logits)
    # the character tokenizer survives: same vocabulary, same ids, same special tokens
    assert tok2.get_vocab() == tok.get_vocab()
    sample = "hag bed\n[MASK]a"
    assert tok2(sample, add_special_tokens=False)["input_ids"] == tok(
        sample, add_special_tokens=False)["input_ids"]
    assert tok2.decode(tok(sample, add_special_tokens=False)["input_ids"]) == sample
    for attr in ("mask_token_id", "cls_token_id", "pad_token_id", "sep_token_id"):
        assert getattr(tok2, attr) == getattr(tok, attr)
    again = dl.CharTokenizer.from_pretrained(tmp_path / "mlm")
    assert isinstance(again, dl.CharTokenizer) and again.get_vocab() == tok.get_vocab()


RESUME = dict(objective="mdlm", steps=12, batch_size=4, seq_len=32, lr=3e-3, warmup=3, seed=7,
              progress=False, device="cpu")


def test_resume_after_interruption_matches_an_uninterrupted_run(tok, tmp_path):
    a = fresh(tok)
    hist_a = dl.train(a, tok, TEXT, **RESUME)

    def interrupt_at_6(step, history, model):
        if step == 6:
            raise KeyboardInterrupt  # what a Colab disconnect or a Ctrl-C looks like

    b = fresh(tok)
    with pytest.raises(KeyboardInterrupt):
        dl.train(b, tok, TEXT, checkpoint_dir=tmp_path, checkpoint_every=4,
                 callbacks=[interrupt_at_6], **RESUME)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000004"]  # 8 never came
    b = fresh(tok, seed=123)  # a new session: the weights come from the checkpoint, not here
    hist_b = dl.train(b, tok, TEXT, checkpoint_dir=tmp_path, checkpoint_every=4, resume=True,
                      **RESUME)
    assert hist_b.loss == hist_a.loss
    assert hist_b.lr == hist_a.lr
    state_a, state_b = a.state_dict(), b.state_dict()
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key


def test_resume_without_a_checkpoint_starts_from_scratch(tok, tmp_path):
    a, b = fresh(tok), fresh(tok)
    short = {**RESUME, "steps": 4}
    hist_a = dl.train(a, tok, TEXT, **short)
    hist_b = dl.train(b, tok, TEXT, checkpoint_dir=tmp_path / "empty", resume=True, **short)
    assert hist_a.loss == hist_b.loss


def test_eval_and_callbacks_record_steps(tok):
    seen = []
    hist = dl.train(fresh(tok), tok, TEXT, objective="mdlm", steps=10, eval_texts=HELD_OUT,
                    eval_every=4, callbacks=[lambda step, h, m: seen.append((step, h.loss[-1]))],
                    **QUICK)
    assert [s for s, _ in hist.eval] == [4, 8, 10]  # every 4 steps, and the last one
    assert all(math.isfinite(v) and v > 0 for _, v in hist.eval)
    assert [s for s, _ in seen] == list(range(1, 11))
    assert [v for _, v in seen] == hist.loss


def test_eval_is_deterministic_held_out_loss(tok):
    """Two runs with the same seed measure the same held-out values."""
    runs = [dl.train(fresh(tok), tok, TEXT, objective="mdlm", steps=4, eval_texts=HELD_OUT,
                     eval_every=2, **QUICK).eval for _ in range(2)]
    assert runs[0] == runs[1]


def test_stop_iteration_ends_training_early(tok):
    def stop_at_3(step, history, model):
        if step == 3:
            raise StopIteration

    hist = dl.train(fresh(tok), tok, TEXT, objective="mdlm", steps=50, callbacks=[stop_at_3],
                    **QUICK)
    assert hist.steps == 3


def test_checkpoints_keep_two_and_pickle_nothing(tok, tmp_path):
    dl.train(fresh(tok), tok, TEXT, objective="mdlm", steps=10, checkpoint_dir=tmp_path,
             checkpoint_every=2, **QUICK)
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == ["step-000008", "step-000010"]
    for folder in tmp_path.iterdir():
        names = {p.name for p in folder.iterdir()}
        assert {"model.safetensors", "config.json", "trainer.safetensors",
                "trainer.json"} <= names
    suffixes = {p.suffix for p in tmp_path.rglob("*") if p.is_file()}
    assert not suffixes & {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"}


def test_task_examples_train_without_packing(tok):
    task = dl.worlds.tasks.Addition(digits=1)
    tok_task = dl.CharTokenizer.from_texts([task.alphabet])
    model = dl.tiny_mlm(tok_task, size="xs", max_length=16)
    hist = dl.train(model, tok_task, task.sample(64), objective="mdlm", steps=3, batch_size=8,
                    seq_len=task.length + 1, packing=False, progress=False, device="cpu")
    assert hist.steps == 3 and hist.tokens == 3 * 8 * (task.length + 1)
