r"""The recipe book: every model the zoo trains, one frozen record each.

A `Recipe` says what is trained (``factory``: `models.tiny_mlm`, `models.tiny_ar` or
`edit_model.tiny_edit`; the training
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
``grammar-edit``    tiny_edit    edit_flow  grammar   grammar-mdlm's budget and init
``qa-diffusion``    tiny_mlm     sft        qa        size s, seq_len 20, 1000 steps, batch 64
``qa-ar``           tiny_ar      sft        qa        the same
``grammar-block4-ar``  tiny_ar   block      grammar   200 steps, batch 64, lr 3e-3; from grammar-ar
``grammar-block16-ar`` tiny_ar   block      grammar   the same, blocks of 16
``grammar-block4-scratch`` ...   block      grammar   the same as block4-ar, from a random start
==================  ===========  =========  ========  ============================================

The four character models share the corpus, tokenizer, size, sequence length, batch size and
step count of the profile, so comparisons between them are at equal compute (equal tokens seen);
the two grammar models share all but the step count (the edit model of chapter 10 has the
MDLM's budget to the step); the two QA models share everything.
The block models (`block`: chapter 9) are GPT-2s of the grammar AR model's size, data and
tokenizer made into block-diffusion models (``block_size``, the shifted prediction kept) and
trained with the block loss: adapted from the trained ``grammar-ar`` (``start``: A2D) or from a
random start, at equal steps.
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

FACTORIES = ("tiny_mlm", "tiny_ar", "tiny_edit")
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
    quarter of the run (a disconnected Colab resumes), ``evals`` times over the run.
    ``init_std``: token embeddings re-drawn from $\mathcal N(0, \mathrm{std}^2)$ before training
    (`symmetry_breaking_init`).  ``block_size``: the model is made a block-diffusion model with
    the shifted prediction (`block_diffusion.as_block_model`) before training.  ``start``: the
    recipe whose trained weights it starts from (A2D), else a random initialisation.
    ``loss_options``: keyword options of the objective's loss (``TrainSettings.loss_options``)."""

    name: str
    factory: str
    objective: str
    data: str
    budgets: Mapping[str, Budget] | None = None
    init_std: float | None = None
    evaluate: bool = True
    block_size: int | None = None
    start: str | None = None
    evals: int = 1
    loss_options: Mapping[str, object] | None = None

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
    start: Plan | None = None  # the plan of the model it starts from (``recipe.start``)

    def identity(self) -> dict:
        """What the trained weights depend on, as JSON-able data (the zoo's cache key hashes it;
        the other profiles' budgets and the progress bar are left out, and so are the block
        fields of a recipe that has none: adding them retrained no older model; the recipe's loss
        options are in the settings)."""
        recipe = {k: v for k, v in dataclasses.asdict(self.recipe).items()
                  if k not in ("budgets", "loss_options")
                  and not (k in BLOCK_FIELDS and v == BLOCK_FIELDS[k])}
        settings = dataclasses.asdict(self.settings)
        settings.pop("progress")
        what = {"recipe": recipe, "corpus": self.corpus, "size": self.size, "settings": settings}
        return what if self.start is None else {**what, "start": self.start.identity()}


BLOCK_FIELDS = {"block_size": None, "start": None, "evals": 1}  # their defaults


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
# Block models (chapter 9): the grammar AR model's batch, learning rate and warmup (warmup at most
# a quarter of the run), the same steps from either start (equal steps), and BD3-LM's clipped
# schedule t ~ U(0.3, 0.8): measured on the cpu profile (2026-12-07, 300 held-out sentences, A2D
# at B = 4, 300 steps), the block bound 1.21 nats/sentence above the truth against 1.50 with
# t ~ U(0, 1); at B = 16, 200 steps: 2.86 against 3.38.
BLOCK_BUDGETS = {"cpu": Budget(200, 64, 3e-3, 51), "gpu": Budget(2000, 256, 1e-3, 200),
                 "smoke": Budget(10, 16, 3e-3, 3)}
BLOCK_T_RANGE = (0.3, 0.8)
BLOCK_INITS = ("ar", "scratch")  # adapted from the grammar AR model (A2D), or from scratch
BLOCK_SIZES = (4, 16)  # the block models chapter 9 trains (B = 1 is the AR model itself)


def block(block_size: int, init: str = "ar") -> Recipe:
    """The recipe ``"grammar-block{block_size}-{init}"``: a block-diffusion GPT-2 on the book
    language (`BLOCK_BUDGETS`, the block loss with `BLOCK_T_RANGE`), started from the trained
    ``"grammar-ar"`` (``init="ar"``: A2D) or from a random initialisation (``"scratch"``)."""
    if isinstance(block_size, bool) or not isinstance(block_size, int) or not 1 <= block_size <= 16:
        raise ValueError(f"block_size must be an int in [1, 16] (the grammar's L), got "
                         f"{block_size!r}")
    if init not in BLOCK_INITS:
        raise ValueError(f"init must be one of {list(BLOCK_INITS)}, got {init!r}")
    return Recipe(f"grammar-block{block_size}-{init}", "tiny_ar", "block_diffusion", "grammar",
                  BLOCK_BUDGETS, block_size=block_size,
                  start="grammar-ar" if init == "ar" else None, evals=8)


RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe("mlm", "tiny_mlm", "mlm", "corpus"),
    Recipe("variable_rate", "tiny_mlm", "variable_rate", "corpus"),
    Recipe("mdlm", "tiny_mlm", "mdlm", "corpus"),
    Recipe("ar", "tiny_ar", "ar", "corpus"),
    Recipe("grammar-mdlm", "tiny_mlm", "mdlm", "grammar", GRAMMAR_BUDGETS["grammar-mdlm"],
           init_std=EMBEDDING_STD),
    Recipe("grammar-ar", "tiny_ar", "ar", "grammar", GRAMMAR_BUDGETS["grammar-ar"]),
    # Edit Flows (chapter 10) against the fixed canvas at the same budget: grammar-mdlm's
    # steps, batch, lr, warmup, size and wide-embedding start.  Its loss is divided by the
    # rate factor 1 / (1 - t) at each t (`edit_flows.edit_loss_terms`, weighting="flat"): the
    # same minimiser, less variance (bench/bench_edit_flows.py --weighting).
    Recipe("grammar-edit", "tiny_edit", "edit_flow", "grammar", GRAMMAR_BUDGETS["grammar-mdlm"],
           init_std=EMBEDDING_STD, loss_options={"weighting": "flat"}),
    Recipe("qa-diffusion", "tiny_mlm", "sft", "qa", QA_BUDGETS, evaluate=False),
    Recipe("qa-ar", "tiny_ar", "sft", "qa", QA_BUDGETS, evaluate=False),
    block(4, "ar"), block(16, "ar"), block(4, "scratch"),
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
                             seq_len=seq_len, lr=b.lr, seed=seed, warmup=b.warmup,
                             loss_options=dict(recipe.loss_options or {}))
    if recipe.evaluate:
        settings = settings.with_(eval_every=max(1, n // recipe.evals),
                                  checkpoint_every=max(1, n // 4))
    if recipe.block_size is not None:
        settings = settings.with_(loss_options={"t_range": BLOCK_T_RANGE})
    corpus = {"corpus": corpus_name or prof.corpus}.get(recipe.data, recipe.data)
    start = plan(recipe.start, prof) if recipe.start is not None else None
    return Plan(recipe, prof.name, corpus, b.size or prof.model_size, settings, start)


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
