"""Checks for chapter 8 (answering questions: SFT as in LLaDA, Nie et al. 2025; threshold
decoding as in Fast-dLLM, Wu et al. 2025)."""

from __future__ import annotations

from . import checker, number, require


@checker("ch8-ex1")
def check_cheapest_threshold(tau, rows: dict) -> str:
    """The threshold whose accuracy is within 1 point of the best diffusion setting's at the
    fewest forward passes per answer (batch 1); ``None`` when no threshold is that close."""
    diffusion = {n: r for n, r in rows.items() if not n.startswith("AR")}
    best = max(r["acc"] for r in diffusion.values())
    close = {float(n.split()[1]): r for n, r in diffusion.items()
             if n.startswith("threshold") and r["acc"] >= best - 0.01}
    if not close:
        require(tau is None, "no threshold is within 1 point of the best here: answer None")
        return "no threshold is within 1 point of the best"
    require(tau is not None, "a threshold is within 1 point of the best here: which one?")
    got = number(tau, "tau")
    require(got in {float(n.split()[1]) for n in diffusion if n.startswith("threshold")},
            "tau should be one of the thresholds in rows")
    require(got in close, f"threshold {got} is more than 1 point less accurate than the best "
                          "diffusion setting (fixed steps count too)")
    require(close[got]["passes1"] == min(r["passes1"] for r in close.values()),
            f"threshold {got} is accurate enough, but another one that is needs fewer passes")
    return f"tau = {got}: {close[got]['passes1']:.1f} passes per answer"
