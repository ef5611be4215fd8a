"""Benchmark (f): does the QA recipe give models that check claims, and take a forced verdict back?

Chapter 8 shows one model of each kind (the zoo's, seed 0).  This script measures the *recipe*:
for each training seed it trains the diffusion model and the same-size GPT-2 with
``dl.zoo.pretrained_qa(kind, seed=...)`` (the zoo's recipe, other seeds; cached) and, on the
chapter's distinct claims (the unit: each claim once), reports

* claim accuracy split by truth value (true claims: "yes" is right; false: "no"), greedy, the
  diffusion model with ``low_confidence`` and one step per free slot;
* the wrong verdict forced ("no" on a true claim, "yes" on a false one, `qa.ask_forced_wrong`):
  the share revised among the claims the *same* model gets right unforced, per truth value, for
  the revising rules (``reread_remask`` re-reads in the present context; ``confidence_weighted``
  is the decode-time rule; ``token_editing`` is LLaDA2.1's, read by probing), and where the
  revised verdict was remasked: after the equation's result was written (`qa.verdict_events`);
* the AR model forced: the share that contradicts itself (right equation, wrong verdict).

Run: python bench/bench_qa_claims.py [--seeds 0,1,2 --claims 120 --profile cpu]
(two trainings per seed: about 2.5 min per seed on 2 quiet cores).
"""

from __future__ import annotations

import time

import torch
from common import parser, prepare

import diffusion_lab as dl
from diffusion_lab.course import recipes

RULES = {"reread_remask": {}, "confidence_weighted": {}, "token_editing": {"score": "probe"}}


def claims_of(n: int) -> list[str]:
    """The chapter's claims: distinct, in the order ``qa.pairs(400, seed=2)`` draws them."""
    claims = list(dict.fromkeys(q for q, _ in dl.qa.pairs(4 * n, seed=2, families=("claims",))))
    return claims[:n]


def split(values, truth) -> tuple[float, float]:
    """(mean over the true claims, mean over the false ones) of a bool list."""
    v, t = torch.tensor(values, dtype=torch.float64), torch.tensor(truth)
    return v[t].mean().item(), v[~t].mean().item()


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--claims", type=int, default=120)
    ap.add_argument("--profile", default="cpu")
    args = ap.parse_args()
    device = prepare(args)
    prof = dl.profile(args.profile)
    claims = claims_of(args.claims)
    truth = [dl.qa.Claims.is_true(q) for q in claims]
    plan = recipes.plan("qa-diffusion", prof)
    length = plan.settings.seq_len - 1
    print(f"{len(claims)} distinct claims ({sum(truth)} true); profile {prof.name}; "
          f"recipe {recipes.get('qa-diffusion').budget(prof)}")
    for seed in (int(s) for s in args.seeds.split(",")):
        tick = time.perf_counter()
        model, tok, info_d = dl.zoo.pretrained_qa("diffusion", prof, seed=seed, progress=False,
                                                  device=device)
        ar, _, info_a = dl.zoo.pretrained_qa("ar", prof, seed=seed, progress=False,
                                             device=device)
        steps = length - min(len(tok(q)["input_ids"]) for q in claims)
        greedy = dict(top_k=1, seed=0)
        df, _ = dl.qa.ask(model, tok, claims, length=length, steps=steps,
                          strategy="low_confidence", **greedy)
        ar_ans, _ = dl.qa.ask(ar, tok, claims, length=length, **greedy)
        ok_d = [dl.qa.check(q, a) for q, a in zip(claims, df, strict=True)]
        ok_a = [dl.qa.check(q, a) for q, a in zip(claims, ar_ans, strict=True)]
        (dt, dfl), (at, afl) = split(ok_d, truth), split(ok_a, truth)
        print(f"\nseed {seed} (trained {info_d['seconds']:.0f} s + {info_a['seconds']:.0f} s): "
              f"claim accuracy true/false: diffusion {dt:.2f}/{dfl:.2f}, AR {at:.2f}/{afl:.2f}")
        forced_ar, _ = dl.qa.ask_forced_wrong(ar, tok, claims, length=length, **greedy)
        contra = [dl.qa.Claims.verdict(a)[1] is True and not dl.qa.check(q, a)
                  for q, a in zip(claims, forced_ar, strict=True)]
        revised_ar = [dl.qa.check(q, a) for q, a in zip(claims, forced_ar, strict=True)]
        print(f"  AR forced: revised {sum(revised_ar)}, self-contradicting "
              f"{sum(contra) / len(claims):.2f}")
        for rule, options in RULES.items():
            answers, events = dl.qa.ask_forced_wrong(model, tok, claims, length=length,
                                                     steps=steps, strategy=rule, **options,
                                                     **greedy)
            right = [i for i, ok in enumerate(ok_d) if ok]  # the unforced model is right
            rev = [dl.qa.check(claims[i], answers[i]) for i in right]
            t_rev, f_rev = split(rev, [truth[i] for i in right])
            after = [e["remasked"] is not None and e["sum_written"] is not None
                     and e["remasked"] > e["sum_written"]
                     for i, e in zip(right, [events[i] for i in right], strict=True)
                     if dl.qa.check(claims[i], answers[i])]
            print(f"  {rule:20s} forced wrong verdict revised (of the {len(right)} claims right "
                  f"unforced): forced no {t_rev:.2f}, forced yes {f_rev:.2f}; remasked after "
                  f"the result was written: {sum(after)}/{len(after)}")
        print(f"  ({time.perf_counter() - tick:.0f} s)")


if __name__ == "__main__":
    main()
