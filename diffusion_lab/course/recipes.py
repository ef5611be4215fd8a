r"""The recipe book: every model the zoo trains, one frozen record each.

A `Recipe` says what is trained (``factory``: `models.tiny_mlm` or `models.tiny_ar`; the training
``objective``), on what (``data``: the profile's character corpus, the sentences of
``grammar.book_language()`` or the question-answer pairs of ``qa``), from what start (``init_std``:
`symmetry_breaking_init`) and with what budget per profile (`Budget`: steps, batch size, learning
rate, warmup, sequence length, model size). `plan` turns a recipe and a run profile into a `Plan`:
the `TrainSettings`, model size and data of one training run, which ``dl.zoo`` trains once and
caches.

==================  ===========  =========  ========  ============================================
recipe              factory      objective  data      budget (cpu profile)
==================  ===========  =========  ========  ============================================
``mlm``             tiny_mlm     mlm        corpus    the profile's: 500 steps, batch 32, lr 2e-3
``variable_rate``   tiny_mlm     variable   corpus    the profile's
``mdlm``            tiny_mlm     mdlm       corpus    the profile's
``ar``              tiny_ar      ar         corpus    the profile's
``grammar-mdlm``    tiny_mlm     mdlm       grammar   1500 steps, batch 64, lr 3e-3; std-1 init
``grammar-ar``      tiny_ar      ar         grammar   500 steps, batch 64, lr 3e-3
``qa-diffusion``    tiny_mlm     sft        qa        size s, seq_len 20, 1000 steps, batch 64
``qa-ar``           tiny_ar      sft        qa        the same
==================  ===========  =========  ========  ============================================

The four character models share the corpus, tokenizer, size, sequence length, batch size and
step count of the profile, so comparisons between them are at equal compute (equal tokens seen);
the two grammar models share all but the step count; the two QA models share everything.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from .. import data
from ..objectives import canonical_objective
from ..settings import TrainSettings, check_int
from ..worlds import qa
from ..worlds.grammar import book_language
from .profiles import Profile

FACTORIES = ("tiny_mlm", "tiny_ar")
DATA = ("corpus", "grammar", "qa")  # the profile's text, the book language, question-answer pairs


@dataclass(frozen=True)
class Budget:
    """What one profile spends on one model; ``seq_len``/``size`` None: the profile's own."""

    steps: int
    batch_size: int
    lr: float
    warmup: int
    seq_len: int | None = None
    size: str | None = None


@dataclass(frozen=True)
class Recipe:
    r"""One zoo model: architecture, objective, data, start and budget per profile.

    ``budgets`` maps a profile name to its `Budget` (a profile it does not name uses "cpu"'s);
    None means the profile's own ``train_steps``, ``batch_size``, ``lr``, ``warmup``,
    ``seq_len`` and ``model_size``.  ``evaluate``: held-out loss at the end and a checkpoint every
    quarter of the run (a disconnected Colab resumes).  ``init_std``: token embeddings re-drawn
    from $\mathcal N(0, \mathrm{std}^2)$ before training (`symmetry_breaking_init`)."""

    name: str
    factory: str
    objective: str
    data: str
    budgets: Mapping[str, Budget] | None = None
    init_std: float | None = None
    evaluate: bool = True

    def budget(self, prof: Profile) -> Budget:
        """This recipe's `Budget` under ``prof``."""
        if self.budgets is None:
            return Budget(prof.train_steps, prof.batch_size, prof.lr, prof.warmup, prof.seq_len,
                          prof.model_size)
        return self.budgets.get(prof.name, self.budgets["cpu"])


@dataclass(frozen=True)
class Plan:
    """One training run of a recipe: ``corpus`` names the data (a corpus name, "grammar" or
    "qa"), ``size`` the model, ``settings`` everything `train` is given."""

    recipe: Recipe
    profile: str
    corpus: str
    size: str
    settings: TrainSettings

    def identity(self) -> dict:
        """What the trained weights depend on, as JSON-able data (the zoo's cache key hashes it;
        the other profiles' budgets and the progress bar are left out)."""
        recipe = {k: v for k, v in dataclasses.asdict(self.recipe).items() if k != "budgets"}
        settings = dataclasses.asdict(self.settings)
        settings.pop("progress")
        return {"recipe": recipe, "corpus": self.corpus, "size": self.size, "settings": settings}


# Grammar models: the MDLM gets 3x the AR model's steps on the cpu profile and is still further
# from the limit (measured 2026-12-02, 300 held-out sentences: the MDLM bound +0.86 nats/sentence
# above the truth after 1500 steps, 93-103 s, and +0.83 after 2000; the AR model +0.14 after 500
# steps, 31-36 s, and +0.08 after 1000): a masked LM must carry a noun's number to its verb
# through attention, which the AR model's next-word loss gets almost for free.
GRAMMAR_BUDGETS = {
    "grammar-mdlm": {"cpu": Budget(1500, 64, 3e-3, 60), "gpu": Budget(8000, 256, 1e-3, 200),
                     "smoke": Budget(20, 16, 3e-3, 5)},
    "grammar-ar": {"cpu": Budget(500, 64, 3e-3, 60), "gpu": Budget(4000, 256, 1e-3, 200),
                   "smoke": Budget(20, 16, 3e-3, 5)},
}
# The grammar MDLM's token embeddings are re-drawn from N(0, EMBEDDING_STD^2) before it trains
# (`symmetry_breaking_init`).
EMBEDDING_STD = 1.0
# QA models; cpu: ~70 s each. Measured on 150 held-out questions (greedy): at 600 steps, lr 2e-3
# the diffusion model answered 0.69 (sums 0.80) against AR's 0.89; at 1000 steps, lr 3e-3 both
# answer every sum and count (1.00), so the two can race at equal accuracy there; claims: 0.44 vs
# 0.74.  Warmup: min(100, steps // 5 + 1).
QA_BUDGETS = {"cpu": Budget(1000, 64, 3e-3, 100, 20, "s"),
              "gpu": Budget(3000, 128, 1e-3, 100, 20, "s"),
              "smoke": Budget(20, 16, 2e-3, 5, 20, "xs")}
# Claims, measured 2026-12-08 (issue 23; seed 0, the chapter's 120 distinct claims, 55 true,
# greedy low_confidence; accuracy on true / false claims): the diffusion model's verdict is at
# chance whatever was tried — 1500 steps lr 3e-3 with claims twice as often: 0.00 / 1.00; the
# same at lr 1e-3: 0.07 / 0.91; 1500 steps lr 1e-3: 0.55 / 0.51; 1000 steps with
# `symmetry_breaking_init` (std 1): 0.38 / 0.69 (lr 3e-3), 0.07 / 0.91 (lr 1e-3); sums and
# counts 1.00 in every run.  Final losses 0.018-0.028 nats are what ln 2 on the verdict alone
# costs: the verdict is not learned at all.  The AR model of this budget: 0.71 / 0.77.
QA_TRAIN_PAIRS = 4000  # seeded pairs of all three families (qa.pairs(4000, seed=0))

RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe("mlm", "tiny_mlm", "mlm", "corpus"),
    Recipe("variable_rate", "tiny_mlm", "variable_rate", "corpus"),
    Recipe("mdlm", "tiny_mlm", "mdlm", "corpus"),
    Recipe("ar", "tiny_ar", "ar", "corpus"),
    Recipe("grammar-mdlm", "tiny_mlm", "mdlm", "grammar", GRAMMAR_BUDGETS["grammar-mdlm"],
           init_std=EMBEDDING_STD),
    Recipe("grammar-ar", "tiny_ar", "ar", "grammar", GRAMMAR_BUDGETS["grammar-ar"]),
    Recipe("qa-diffusion", "tiny_mlm", "sft", "qa", QA_BUDGETS, evaluate=False),
    Recipe("qa-ar", "tiny_ar", "sft", "qa", QA_BUDGETS, evaluate=False),
)}


def get(kind: str) -> Recipe:
    """The recipe ``kind`` (an objective's old name, e.g. "variable", accepted)."""
    if not isinstance(kind, str):
        raise TypeError(f"kind must be a str, got {type(kind).__name__}")
    name = kind if kind in RECIPES else canonical_objective(kind)
    if name not in RECIPES:
        raise ValueError(f"kind must be one of {list(RECIPES)}, got {kind!r}")
    return RECIPES[name]


def plan(kind: str | Recipe, prof: Profile, *, corpus_name: str | None = None,
         steps: int | None = None, seed: int = 0) -> Plan:
    """The `Plan` of recipe ``kind`` under ``prof``; ``corpus_name`` and ``steps`` override the
    character corpus and the step count (e.g. a small model of Python code); ``seed`` the
    initial weights and batches (the book's models are seed 0; a bench trains others to
    measure the recipe rather than one model)."""
    check_int(seed, "seed", minimum=0)
    recipe = kind if isinstance(kind, Recipe) else get(kind)
    if corpus_name is not None and recipe.data != "corpus":
        raise ValueError(f"corpus_name is for the character models, not {recipe.name!r}")
    b = recipe.budget(prof)
    n = steps or b.steps
    seq_len = b.seq_len if recipe.data != "grammar" else book_language().max_len + 1
    settings = TrainSettings(objective=recipe.objective, steps=n, batch_size=b.batch_size,
                             seq_len=seq_len, lr=b.lr, seed=seed, warmup=b.warmup)
    if recipe.evaluate:
        settings = settings.with_(eval_every=n, checkpoint_every=max(1, n // 4))
    corpus = {"corpus": corpus_name or prof.corpus}.get(recipe.data, recipe.data)
    return Plan(recipe, prof.name, corpus, b.size or prof.model_size, settings)


def texts(p: Plan) -> tuple:
    """(training data, held-out data or None) of a plan: the character corpus split 95/5; the
    book language's [EOS]-padded sentences (steps x batch of them, seeded, and 512 held out);
    the `QA_TRAIN_PAIRS` seeded question-answer pairs."""
    if p.corpus == "grammar":
        g, n = book_language(), p.settings.steps * p.settings.batch_size
        return g.texts(n, seed=0), g.texts(512, seed=1)
    if p.corpus == "qa":
        return qa.pairs(QA_TRAIN_PAIRS, seed=0), None
    return data.split_corpus(data.load_corpus(p.corpus), 0.05)


def tokenizer(p: Plan):
    """A plan's tokenizer: characters of the whole corpus, the book language's words, or the QA
    models' byte-level BPE (320 ids, trained on the seeded training pairs)."""
    if p.corpus == "grammar":
        return book_language().tokenizer()
    if p.corpus == "qa":
        return data.train_tokenizer([f"{q} {a}" for q, a in qa.pairs(QA_TRAIN_PAIRS, seed=0)],
                                    vocab_size=320)
    return data.CharTokenizer.from_texts([data.load_corpus(p.corpus)])


def symmetry_breaking_init(model, std: float = EMBEDDING_STD):
    r"""Re-draw the token embeddings from $\mathcal N(0, \mathrm{std}^2)$ (BERT's default is
    std 0.02).  Measured on the book language (cpu profile, 2026-12-02,
    `bench/bench_grammar_init.py`): with std 0.02 the masked LM sits on a saddle — singular and
    plural words keep near-identical embeddings, no "number" direction forms, and every
    agreement costs about $\ln 2$ nats (nouns and verbs +0.67 nats above the exact conditional
    after 1000 steps, +0.64 after 2000); with std 1.0, +0.17 after 1000 steps and +0.08 after
    2000.  An AR model escapes the saddle without it: its next-word loss reaches the number
    through the same position's own token.  Returns ``model``."""
    weight = model.get_input_embeddings().weight
    with torch.no_grad():
        weight.normal_(0.0, std, generator=torch.Generator().manual_seed(0))
    return model
