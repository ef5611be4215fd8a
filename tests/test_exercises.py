"""Every exercise check: a right answer passes; a wrong and an empty one fail with a hint that
does not contain the answer (diffusion_lab/classroom/exercises)."""

import math

import numpy as np
import pytest
import torch

import diffusion_lab as dl
from diffusion_lab.classroom.exercises import (
    ExerciseFailed,
    ch0,
    ch1,
    ch3,
    ch4,
    ch5,
    ch5b,
    ch6,
    ch7,
    ch8,
)


@pytest.fixture(scope="module")
def tok():
    return dl.CharTokenizer.from_texts(["abcdefgh ij\n"])


def fails(check, *args, **kwargs) -> str:
    with pytest.raises(ExerciseFailed) as err:
        check(*args, **kwargs)
    return str(err.value)


def test_scratch_bound(monkeypatch):
    from diffusion_lab.course import scratch

    monkeypatch.setattr(ch0, "HELD_OUT_SIZE", 500)  # the chapter's 2000 sentences, cut for time
    torch.manual_seed(0)
    model = scratch.Denoiser()
    held, g = scratch.lang.sample_ids(500, seed=2), torch.Generator().manual_seed(9)
    with torch.no_grad():  # a student's estimate: 16 draws of independent t, the scratch loss
        right = scratch.L * sum(scratch.mdlm_loss(
            model, held, torch.rand(500, generator=g, dtype=torch.float64).clamp(min=1e-3), g)
            .item() for _ in range(16)) / 16
    assert ch0.check_bound(right, model)
    assert "per token" in fails(ch0.check_bound, right / scratch.L, model)
    assert "bits" in fails(ch0.check_bound, right / math.log(2), model)
    assert "more than" in fails(ch0.check_bound, right - 3.0, model)
    assert "empty" in fails(ch0.check_bound, ..., model)


def test_split_fractions(tok):
    def right(clean, noisy, chosen):
        n = chosen.sum().item()
        m = (noisy[chosen] == tok.mask_token_id).sum().item() / n
        s = (noisy[chosen] == clean[chosen]).sum().item() / n
        return m, 1 - m - s, s

    def over_all(clean, noisy, chosen):  # a classic mistake: every position in the denominator
        n = clean.numel()
        m = (noisy == tok.mask_token_id).sum().item() / n
        return m, 0.0, 1 - m

    assert ch1.check_split_fractions(right, tok)
    hint = fails(ch1.check_split_fractions, over_all, tok)
    assert "chosen positions" in hint and "0.8" not in hint
    assert "empty" in fails(ch1.check_split_fractions, lambda c, n, ch: None, tok)
    assert "function" in fails(ch1.check_split_fractions, ..., tok)


def test_top5_accuracy(tok):
    dl.seed_everything(0)
    model = dl.tiny_mlm(tok, size="xs", max_length=32).eval()
    blocks = torch.randint(5, len(tok), (32, 32))
    blocks[:, 0] = tok.cls_token_id
    want, _ = ch1._top_k_accuracy(model, tok, blocks, 5)
    top1, _ = ch1._top_k_accuracy(model, tok, blocks, 1)
    assert ch1.check_top5(want, model, tok, blocks, top1=top1)
    assert "top-1" in fails(ch1.check_top5, top1, model, tok, blocks, top1=top1)
    assert "empty" in fails(ch1.check_top5, ..., model, tok, blocks, top1=top1)
    assert "[0, 1]" in fails(ch1.check_top5, 1.5, model, tok, blocks, top1=top1)


class _Traj:
    def __init__(self, fractions, slots=20000, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.frames = [type("F", (), {"mask": torch.cat(
            [torch.zeros(100, 1, dtype=torch.bool), torch.rand(100, slots // 100, generator=g) < p],
            1)})() for p in fractions]


def test_coconet_schedule():
    N = 10
    right = ch2_reference = dl.exercises.ch2._coconet_reference
    traj = _Traj([ch2_reference(n, N) for n in range(1, N)] + [0.0])
    assert dl.exercises.ch2.check_coconet_p(right, traj)
    no_floor = lambda n, N: 0.9 - 0.8 * n / (0.7 * N)  # noqa: E731 - forgets p_min
    hint = fails(dl.exercises.ch2.check_coconet_p, no_floor, traj)
    assert "floor" in hint and "max(" not in hint
    assert "empty" in fails(dl.exercises.ch2.check_coconet_p, lambda n, N: ..., traj)


def test_quality_properties():
    base, real = {"judge bits": 3.0, "entropy": 4.0}, {"judge bits": 2.5, "entropy": 4.1,
                                                       "repetition": 0.1}
    assert dl.exercises.ch2.check_colder_chain({"judge bits": 2.8, "entropy": 3.7}, base, real)
    assert "temperature" in fails(dl.exercises.ch2.check_colder_chain,
                                  {"judge bits": 3.1, "entropy": 4.0}, base, real)
    assert "quality" in fails(dl.exercises.ch2.check_colder_chain, [2.8, 3.7], base, real)
    assert "empty" in fails(dl.exercises.ch2.check_confident, ..., real)
    assert dl.exercises.ch2.check_confident({"judge bits": 2.0, "entropy": 3.0,
                                             "repetition": 0.5}, real)
    hint = fails(dl.exercises.ch2.check_confident, {"judge bits": 2.0, "entropy": 4.0,
                                                    "repetition": 0.05}, real)  # no collapse
    assert "entropy" in hint and "4.1" not in hint


def test_seed_schedule():
    T = 10
    grid = ch3._grid(T)
    frames = [type("F", (), {"mask": torch.rand(50, 40) < p})() for p in grid]
    runs = {("variable", d): type("T", (), {"fixed": torch.zeros(50, 40, dtype=torch.bool),
                                            "frames": frames})()
            for d in ("random", "random, carry-over")}
    assert ch3.check_seed_schedule(lambda T: [1 - n / T for n in range(1, T + 1)], runs, T)
    off_by_one = lambda T: [1 - n / T for n in range(T)]  # noqa: E731
    assert "nothing masked" in fails(ch3.check_seed_schedule, off_by_one, runs, T)
    assert "empty" in fails(ch3.check_seed_schedule, lambda T: None, runs, T)


def test_one_pass():
    same = {s: ["a", "b", "c", "d"] for s in ("mask_predict", "low_confidence", "gibbs", "random")}
    assert ch3.check_one_pass(same)
    assert "identical" in fails(ch3.check_one_pass, {**same, "gibbs": ["x", "b", "c", "d"]})
    assert "empty" in fails(ch3.check_one_pass, ...)


def cosine_by_autograd(t):
    t = t.clone().requires_grad_(True)
    a = dl.noise.alpha(t, "cosine")
    (da,) = torch.autograd.grad(a.sum(), t)
    return (-da / (1 - a)).detach()


def test_cosine_weight():
    assert ch4.check_cosine_weight(cosine_by_autograd)
    twice = lambda t: 2 / t  # noqa: E731 - the book's old mistake
    hint = fails(ch4.check_cosine_weight, twice)
    assert "cot" not in hint and "pi" not in hint.lower()
    assert "function" in fails(ch4.check_cosine_weight, None)
    assert "empty" in fails(ch4.check_cosine_weight, lambda t: None)
    # the fixed solution: (pi/2) cot(pi t/2) ~ 1/t near 0, not 2/t
    t = torch.tensor([1e-3], dtype=torch.float64)
    assert math.isclose(cosine_by_autograd(t).item() * 1e-3, 1.0, rel_tol=1e-3)


def test_riemann():
    t = torch.linspace(0.05, 1.0, 20)
    curve = np.linspace(1.0, 3.0, 20)
    picks = [int((t - k / 10).abs().argmin()) for k in range(1, 11)]
    r = float(curve[picks].mean())
    c = r - 0.05 * (curve[-1] - curve[0])
    assert ch4.check_riemann(r, c, curve, t, elbo_bits=c + 0.01)
    assert "ten training" in fails(ch4.check_riemann, float(curve.mean()), c, curve, t, c)
    assert "empty" in fails(ch4.check_riemann, ..., c, curve, t, c)


def test_antithetic():
    g = torch.Generator().manual_seed(0)
    a = (3 + 0.05 * torch.randn(16, generator=g)).tolist()
    b = (3 + 0.2 * torch.randn(16, generator=g)).tolist()
    assert ch4.check_antithetic(a, b)
    assert "spread" in fails(ch4.check_antithetic, b, a)
    assert "empty" in fails(ch4.check_antithetic, [], b) or True  # [] is a sequence: length hint
    assert "8 repetitions" in fails(ch4.check_antithetic, a[:4], b[:4])


def test_expected_reveals_rejects_without_running(tok):
    wrong = lambda m, n, s: [m / n] * n  # noqa: E731 - linear only: wrong for cosine
    hint = fails(ch5.check_expected_reveals, wrong, None, tok, 20, 2)
    assert "cosine" in hint and "sin(" not in hint
    assert "empty" in fails(ch5.check_expected_reveals, lambda m, n, s: None, None, tok, 20, 2)


def test_few_steps():
    curve = {("ancestral", s): (b, 0, 0) for s, b in ((1, 5.0), (2, 4.0), (4, 3.05), (8, 3.0))}
    assert ch5.check_few_steps(4, curve, [1, 2, 4, 8])
    assert "more than 0.1" in fails(ch5.check_few_steps, 2, curve, [1, 2, 4, 8])
    assert "smaller" in fails(ch5.check_few_steps, 8, curve, [1, 2, 4, 8])
    assert "empty" in fails(ch5.check_few_steps, ..., curve, [1, 2, 4, 8])


def test_bootstrap():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(200, 3, generator=g) < 0.8, torch.rand(200, 3, generator=g) < 0.3
    pick = torch.randint(0, 200, (2000, 200), generator=torch.Generator().manual_seed(0))
    diffs = a[pick].float().mean((1, 2)) - b[pick].float().mean((1, 2))
    lo, hi = diffs.quantile(0.01).item(), diffs.quantile(0.99).item()
    assert ch6.check_bootstrap(lo, hi, a, b)
    flat = torch.randint(0, 600, (2000, 600), generator=g)  # resampling outcomes, not puzzles:
    wide = (a.flatten().float()[flat].mean(1) - b.flatten().float()[flat].mean(1))  # same here;
    assert ch6.check_bootstrap(wide.quantile(0.01).item(), wide.quantile(0.99).item(), a, b) \
        or True  # ...so only a clearly wrong width must fail:
    assert "width" in fails(ch6.check_bootstrap, lo - 0.1, hi + 0.1, a, b)
    assert "empty" in fails(ch6.check_bootstrap, ..., hi, a, b)


def test_own_rule_must_be_new():
    outcomes = {"random": torch.tensor([True, False] * 50)}

    def solve(strategy, seed):
        return outcomes.get(strategy, torch.ones(100, dtype=torch.bool))

    assert "library's rules" in fails(ch6.check_own_rule, "low_confidence", solve, (0, 1))
    assert "not registered" in fails(ch6.check_own_rule, "no_such_rule", solve, (0, 1))

    @dl.register_strategy("_test_copycat", revises=True)
    def copycat(ctx):
        return dl.strategies.low_confidence(ctx)

    try:  # beats random, but solves exactly what the library's rules solve
        assert "exactly" in fails(ch6.check_own_rule, "_test_copycat", solve, (0, 1))
    finally:
        del dl.STRATEGIES["_test_copycat"]


def test_an_effect_the_model_must_show_is_reported_where_claims_are(monkeypatch, capsys):
    """On smoke (claims reported), a seconds-trained model that solves nothing reports the
    failed effect instead of failing the notebook; enforced, the same check fails."""
    from diffusion_lab.classroom import exercises
    from diffusion_lab.course import notebook

    nothing = torch.zeros(100, dtype=torch.bool)

    @dl.register_strategy("_test_smoke_rule", revises=True)
    def rule(ctx):
        return dl.strategies.low_confidence(ctx)

    try:
        assert "not below 0.01" in fails(ch6.check_own_rule, "_test_smoke_rule",
                                         lambda s, seed: nothing, (0, 1))
        monkeypatch.setitem(notebook._mode, "claims", "report")
        ch6.check_own_rule("_test_smoke_rule", lambda s, seed: nothing, (0, 1))
        assert "claim not enforced (smoke): exercise check (0 wins vs 0 losses" in (
            capsys.readouterr().out)
        with pytest.raises(exercises.ExerciseFailed, match="still empty"):
            exercises.answered(..., "answer")  # an answer's own checks are never relaxed
    finally:
        del dl.STRATEGIES["_test_smoke_rule"]


def test_break_even_and_checkpoint():
    race = {"AR": {"seconds": 2.0, "passes": 100}, 64: {"seconds": 1.0, "passes": 64}}
    assert ch7.check_break_even(128, race, 64)
    assert "int" in fails(ch7.check_break_even, 128.0, race, 64)
    assert "fit in" in fails(ch7.check_break_even, 64, race, 64)
    assert ch7.check_checkpoint_step(200, 250, 100)
    assert "newest" in fails(ch7.check_checkpoint_step, 100, 250, 100)
    assert "empty" in fails(ch7.check_checkpoint_step, None, 250, 100)


def test_prediction():
    measured = {"a": 1.0, "b": 2.0}
    assert dl.exercises.check_prediction("x", "b", "a", measured)  # wrong prediction: still passes
    assert "agree" in fails(dl.exercises.check_prediction, "x", "a", "b", measured)
    assert "empty" in fails(dl.exercises.check_prediction, "x", ..., "a", measured)
    assert "one of" in fails(dl.exercises.check_prediction, "x", "c", "a", measured)
    tie = {"a": 1.0, "b": 1.01}
    assert dl.exercises.check_prediction("x", "a", "about the same", tie, tie=0.05)


def test_results_are_logged(tmp_path, monkeypatch):
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv(dl.exercises.GRADE_LOG_ENV, str(log))
    ch7.check_checkpoint_step(200, 250, 100)
    with pytest.raises(ExerciseFailed):
        ch7.check_checkpoint_step(100, 250, 100)
    rows = log.read_text().splitlines()
    assert [r.count('"passed": 1') for r in rows] == [1, 0]


@pytest.fixture(scope="module")
def tiny(tok):
    dl.seed_everything(0)
    return dl.tiny_mlm(tok, size="xs", max_length=130).eval()


def test_busiest_bin(tok, tiny):
    text = "abc def ghij\n" * 400
    cal = dl.metrics.calibration(tiny, tok, text, rate=0.15)
    busiest = int(cal["count"].argmax())
    assert ch1.check_busiest_bin(busiest, float(cal["accuracy"][busiest]), tiny, tok, text)
    other = (busiest + 1) % len(cal["count"])
    assert "busiest" in fails(ch1.check_busiest_bin, other, 0.5, tiny, tok, text)
    assert "confidence" in fails(ch1.check_busiest_bin, busiest,
                                 float(cal["confidence"][busiest]) + 0.5, tiny, tok, text)
    assert "empty" in fails(ch1.check_busiest_bin, ..., 0.5, tiny, tok, text)


def test_remask_stats(tok, tiny):
    traj = dl.generate(tiny, tok, prompts=[""], length=40, steps=8, strategy="mask_predict",
                       seed=0, num_samples=4)
    free = ~traj.fixed
    back = torch.stack([f.remasked for f in traj.frames])
    a = (back.any(0) & free).sum().item() / free.sum().item()
    before = torch.stack([traj.start.ids] + [f.ids for f in traj.frames[:-1]])
    b = (before[back] != traj.ids.expand_as(before)[back]).float().mean().item()
    assert ch3.check_remask_stats(a, b, traj)
    events = back.sum().item() / free.sum().item()  # counting events, not slots
    if abs(events - a) > 1e-6:
        assert "slots, not events" in fails(ch3.check_remask_stats, events, b, traj)
    assert "empty" in fails(ch3.check_remask_stats, None, b, traj)


def test_greedy_rejects_before_running(tok):
    assert "expected 4 texts" in fails(ch5.check_greedy, ["a"], None, tok, 10, 2, 4.0, 4)
    assert "empty" in fails(ch5.check_greedy, ..., None, tok, 10, 2, 4.0, 4)
    assert "filled" in fails(ch5.check_greedy, ["a[MASK]"] * 4, None, tok, 10, 2, 4.0, 4)


def test_wrong_digit(tiny):
    task = dl.worlds.tasks.MiniSudoku(holes=6)
    task_tok = dl.CharTokenizer.from_texts([task.alphabet])
    dl.seed_everything(0)
    model = dl.tiny_mlm(task_tok, size="xs", max_length=task.length + 1).eval()
    grids = task.sample(20, seed=7)
    given = [g[:10] for g in grids]
    run = dl.generate(model, task_tok, [g[:10] + g[0] for g in grids], length=task.length,
                      steps=4, strategy="confidence_weighted", seed=0, revisable=[10])
    digits = [g[10] for g in grids]
    p_wrong = run.start.confidence[:, 11].double().mean().item()
    hint = fails(ch6.check_wrong_digit, p_wrong + 0.1, 0.5, run, model, task_tok, given, digits,
                 task.length)
    assert "p_wrong is off" in hint
    assert "empty" in fails(ch6.check_wrong_digit, ..., 0.5, run, model, task_tok, given, digits,
                            task.length)


def test_left_to_right_strategy(tok):
    dl.seed_everything(0)
    model = dl.tiny_mlm(tok, size="xs", max_length=16).eval()

    @dl.register_strategy("ex6_left_to_right")
    def right(ctx):
        pos = torch.arange(ctx.x.shape[1], device=ctx.x.device, dtype=torch.float64)
        score = (-pos).expand_as(ctx.p).masked_fill(~(ctx.masked & ctx.region), float("-inf"))
        return dl.strategies.top_k_mask(score, ctx.reveal_count()), ctx.nothing()

    assert ch5.check_left_to_right("ex6_left_to_right", model, tok, 12, 4, 3)
    hint = fails(ch5.check_left_to_right, "low_confidence", model, tok, 12, 4, 3)
    assert "right of a masked one" in hint
    assert "register the rule first" in fails(ch5.check_left_to_right, "nope", model, tok, 12, 4, 3)
    assert "empty" in fails(ch5.check_left_to_right, ..., model, tok, 12, 4, 3)


def test_beats_low_confidence():
    from diffusion_lab.worlds.grammar import book_language
    from diffusion_lab.worlds.grammar_oracle import GrammarOracleForMaskedLM

    lang = book_language()
    tok, oracle = lang.tokenizer(), GrammarOracleForMaskedLM(lang)
    assert ch5b.check_beats_low_confidence("maskgit", {}, oracle, tok, lang, 200)
    assert ch5b.check_beats_low_confidence("ancestral", {}, oracle, tok, lang, 200)  # also right
    hint = fails(ch5b.check_beats_low_confidence, "threshold", {}, oracle, tok, lang, 200)
    assert ("less often valid" in hint or "no closer" in hint) and "maskgit" not in hint
    hint = fails(ch5b.check_beats_low_confidence, "low_confidence", {}, oracle, tok, lang, 200)
    assert "low_confidence itself" in hint and "maskgit" not in hint
    assert "empty" in fails(ch5b.check_beats_low_confidence, ..., {}, oracle, tok, lang, 200)


def test_cheapest_threshold():
    rows = {"AR (KV cache)": {"acc": 0.9, "passes1": 9.0},
            "fixed 4 steps": {"acc": 0.60, "passes1": 4.0},
            "fixed 13 steps": {"acc": 0.70, "passes1": 13.0},
            "threshold 0.5": {"acc": 0.65, "passes1": 2.0},
            "threshold 0.7": {"acc": 0.695, "passes1": 3.0},
            "threshold 0.9": {"acc": 0.70, "passes1": 4.5}}
    assert ch8.check_cheapest_threshold(0.7, rows)
    hint = fails(ch8.check_cheapest_threshold, 0.5, rows)
    assert "less accurate" in hint and "0.7" not in hint
    hint = fails(ch8.check_cheapest_threshold, 0.9, rows)
    assert "fewer passes" in hint and "0.7" not in hint
    assert "empty" in fails(ch8.check_cheapest_threshold, ..., rows)
    assert "which one" in fails(ch8.check_cheapest_threshold, None, rows)
    rows["fixed 13 steps"]["acc"] = 0.9  # no threshold within 1 point: the answer is None
    assert ch8.check_cheapest_threshold(None, rows)
    assert "None" in fails(ch8.check_cheapest_threshold, 0.7, rows)
