"""Checks for chapter 2 (Gibbs sampling with an MLM: Wang & Cho 2019; Coconet's annealed
schedule, Huang et al. 2017)."""

from __future__ import annotations

from . import answered, checker, number, require, require_effect


def _coconet_reference(n: int, N: int, p_min=0.1, p_max=0.9, anneal=0.7) -> float:
    return max(p_min, p_max - (p_max - p_min) * n / (anneal * N))


@checker("ch2-ex1")
def check_coconet_p(coconet_p, trajectory) -> str:
    """``coconet_p(n, N)`` against the library's schedule and the masked share of ``trajectory``
    (a Coconet run recorded frame by frame)."""
    require(callable(coconet_p), "pass your function itself: check(coconet_p)")
    for N in (4, 10, 32):
        for n in range(N + 1):
            got = number(coconet_p(n, N), f"coconet_p({n}, {N})")
            require(abs(got - _coconet_reference(n, N)) < 1e-9,
                    f"coconet_p({n}, {N}) = {got:.3f} is off: check the start, the floor p_min, "
                    "and how fast the annealing reaches it (a fraction `anneal` of the steps)")
    frames = trajectory.frames
    N = len(frames)
    slots = frames[0].mask[:, 1:].numel()
    for n in range(1, N):
        want = coconet_p(n, N)
        share = frames[n - 1].mask[:, 1:].double().mean().item()
        tolerance = 4 * (want * (1 - want) / slots) ** 0.5 + 0.01
        require(abs(share - want) < tolerance, f"after step {n} the sampler masked {share:.3f} "
                "of the slots: your schedule and the run disagree")
    return f"agrees with the library and with the {N}-step run"


def _quality(q) -> tuple[float, float]:
    answered(q, "q")
    require(isinstance(q, dict) and {"judge bits", "entropy"} <= set(q),
            "pass the dict that `quality(texts)` returns")
    return number(q["judge bits"], "judge bits"), number(q["entropy"], "entropy")


@checker("ch2-ex2")
def check_colder_chain(q, base, real) -> str:
    """Property: a colder chain pleases the judge more (lower bits) and pays in entropy."""
    bits, entropy = _quality(q)
    require_effect(bits < base["judge bits"], "the judge should like a colder chain more: did "
                   "you pass temperature=0.7 to dl.generate?")
    require_effect(entropy < base["entropy"] - 0.05, "a colder chain should use fewer distinct "
                   "characters: is the temperature below 1?")
    return (f"judge {base['judge bits']:.2f} -> {bits:.2f} bits, entropy {base['entropy']:.2f} -> "
            f"{entropy:.2f} (real text {real['judge bits']:.2f}, {real['entropy']:.2f})")


@checker("ch2-ex3")
def check_confident(q, real) -> str:
    """Property: confidence order collapses: entropy well below real text's and more repetition
    than real text, whatever the judge says of it."""
    bits, entropy = _quality(q)
    require_effect(entropy < real["entropy"] - 0.5 and q["repetition"] > real["repetition"],
                   "look at the entropy and the repetition rate of the samples: did you use "
                   "strategy='low_confidence'?")
    return (f"judge {bits:.2f} bits (real {real['judge bits']:.2f}), entropy {entropy:.2f} "
            f"(real {real['entropy']:.2f}), repetition {q['repetition']:.2f}")
