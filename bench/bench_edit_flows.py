"""Benchmark: the Edit Flow of chapter 10 against the fixed canvas, and its two design choices.

1. Cost of a training step: the edit model (`edit_model.tiny_edit`, objective ``edit_flow``)
   against the same-size MDLM on the book language, batch 64, best of ``--repeats``; printed
   as a ratio (the edit rows are shorter: no [EOS] padding).
2. The sampler's insertion rule, with the zoo's ``grammar-edit`` model (trained if missing):
   share of valid sentences and length KL for at most one word per gap per step
   (``insertions="one"``) against a Poisson number (``"poisson"``), at 16 and 32 steps.
3. With ``--weighting``: the time weighting of the loss — the paper's rate factor
   $\\dot\\kappa_t/(1-\\kappa_t)$ against ``"flat"`` — two models trained with the zoo's cpu
   recipe (2 x about 80 s on 2 idle cores), scored like 2.

Run: python bench/bench_edit_flows.py [--sentences 300 --threads 2 --weighting]
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import torch
from common import best_of, parser, prepare

import diffusion_lab as dl
from diffusion_lab.course import recipes, zoo
from diffusion_lab.edit_model import tiny_edit
from diffusion_lab.edit_sampling import generate_edits
from diffusion_lab.worlds import grammar_edits as ge


def step_cost(repeats: int, device) -> dict[str, float]:
    lang = dl.worlds.grammar.book_language()
    tok, texts = lang.tokenizer(), lang.texts(64 * 20, seed=0)
    out = {}
    for name, factory, objective in (("mdlm", dl.tiny_mlm, "mdlm"),
                                     ("edit", tiny_edit, "edit_flow")):
        def run(factory=factory, objective=objective):
            model = factory(tok, "s", lang.max_len + 1)
            dl.train(model, tok, texts, objective=objective, steps=20, batch_size=64,
                     seq_len=lang.max_len + 1, lr=3e-3, warmup=5, progress=False, device=device)
        out[name] = best_of(run, repeats)[0] / 20
    return out


def score(model, tok, n: int, steps: int, insertions: str = "one") -> tuple[float, float]:
    lang = dl.worlds.grammar.book_language()
    run = generate_edits(model, tok, [""], steps=steps, num_samples=n, seed=0,
                         max_length=lang.max_len, record=False, insertions=insertions)
    valid = torch.isfinite(ge.log_prob(lang, run.texts)).double().mean().item()
    return valid, ge.length_kl(run.lengths(), lang)


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--sentences", type=int, default=300)
    ap.add_argument("--weighting", action="store_true", help="train both time weightings")
    args = ap.parse_args()
    device = prepare(args)
    cost = step_cost(args.repeats, device)
    print(f"training step, batch 64: MDLM {1000 * cost['mdlm']:.0f} ms, edit model "
          f"{1000 * cost['edit']:.0f} ms; ratio edit / MDLM {cost['edit'] / cost['mdlm']:.2f}")
    model, tok, _ = zoo.pretrained("grammar-edit", dl.profile("cpu"), progress=False)
    for steps in (16, 32):
        one, poisson = (score(model, tok, args.sentences, steps, rule)
                        for rule in ("one", "poisson"))
        print(f"K = {steps}: valid {one[0]:.3f} (one word per gap per step) vs {poisson[0]:.3f} "
              f"(Poisson), ratio {one[0] / max(poisson[0], 1e-9):.2f}; length KL {one[1]:.3f} "
              f"vs {poisson[1]:.3f}")
    if not args.weighting:
        return
    for weighting in ("paper", "flat"):
        recipe = dataclasses.replace(recipes.RECIPES["grammar-edit"],
                                     loss_options={"weighting": weighting})
        plan = recipes.plan(recipe, dl.profile("cpu"))
        with tempfile.TemporaryDirectory() as checkpoints:
            trained, tok, hist = zoo.train_model(plan, Path(checkpoints), False, device)
        valid, kl = score(trained.eval(), tok, args.sentences, 32)
        print(f"weighting {weighting!r}: {hist.steps} steps in {hist.seconds:.0f} s; K = 32: "
              f"valid {valid:.3f}, length KL {kl:.3f}")


if __name__ == "__main__":
    main()
