"""The book's shared models: trained once per profile, cached on disk, loaded by every chapter.

A chapter calls ``dl.zoo.pretrained("mdlm")``: the first call trains the model with the profile's
budget and saves it (safetensors) under ``dl.cache_dir()``; later calls — in this chapter, the next
chapter, or the next build — load it in a second.  So the book spends its minutes on a few good
models instead of many poor ones.  What each model is — architecture, objective, data, budget per
profile — is one record of the recipe book (`recipes`):

* ``"mlm"``      — BERT's 15% / 80-10-10 objective (chapter 1; the "pretrained BERT" offline)
* ``"variable_rate"`` — the seed article's ten masking rates (chapter 3; old name ``"variable"``)
* ``"mdlm"``     — the masked-diffusion ELBO (chapters 4-6)
* ``"ar"``       — a GPT-2 of the same size, data and steps: baseline and judge
* ``"grammar-mdlm"``, ``"grammar-ar"`` — the same two on sentences of ``grammar.book_language()``
  (the MDLM trains longer and starts from wide token embeddings,
  `recipes.symmetry_breaking_init`), for the chapter on parallel decoding and the intro
* ``"grammar-edit"`` — an Edit Flow (`edit_model.tiny_edit`, objective ``"edit_flow"``) on the
  same sentences with the grammar MDLM's budget, for the chapter on writing by edits

`pretrained_block`: block-diffusion models (chapter 9) of the grammar AR model's size, data and
tokenizer, with its shifted prediction: adapted from ``"grammar-ar"`` (A2D) or trained from
scratch, at each block size (recipes ``"grammar-block{B}-{init}"``, `recipes.block`);

and, for the closing chapter, `pretrained_qa`: a masked LM and a same-size GPT-2 fine-tuned
(``objective="sft"``) on the question-answer pairs of ``qa``, with a BPE tokenizer in which
"yes" and "no" are single tokens (so a forced "no" can be revised into "yes" in place).

The cache folder's name ends in a hash of the plan (`recipes.Plan.identity`: the recipe, its
data, size and `TrainSettings`) and of the code that trains it (`TRAINING_CODE`, `train_model`,
the data's builders and world): change the loss, the noise, the model or the loop, and the next
call trains afresh — no version number to remember to bump.  The code is hashed as a multiset of
top-level statements without docstrings, comments or import statements (`code_fingerprint`), so
editing prose or moving a function unchanged from one hashed module to another retrains nothing.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import textwrap
from pathlib import Path

from .. import (
    block_diffusion,
    categorical,
    data,
    denoiser,
    edit_flows,
    edit_model,
    models,
    noise,
    objectives,
    runtime,
    settings,
    tokenization,
)
from .. import train as train_module
from ..edit_model import tiny_edit
from ..models import load, save, tiny_ar, tiny_mlm
from ..runtime import cache_dir, file_lock, get_device, seed_everything
from ..train import train
from ..worlds import grammar, qa
from . import recipes
from .profiles import Profile
from .profiles import profile as get_profile

TRAINING_CODE = (categorical, data, denoiser, models, noise, objectives, settings, tokenization,
                 train_module, runtime.seed_everything)
FACTORIES = {"tiny_mlm": tiny_mlm, "tiny_ar": tiny_ar, "tiny_edit": tiny_edit}
FACTORY_CODE = {"tiny_edit": (edit_flows, edit_model)}  # code only that factory's models run
WORLDS = {"corpus": (), "grammar": (grammar,), "qa": (qa,)}  # what a recipe's data is made of
QA_KINDS = ("diffusion", "ar")


def corpus(prof: Profile | None = None) -> tuple[str, str]:
    """(train, held-out) text of the profile's corpus, as the character models see it; held-out
    is the last 5%."""
    return recipes.texts(recipes.plan("mdlm", prof or get_profile()))


def tokenizer(prof: Profile | None = None) -> data.CharTokenizer:
    """The character tokenizer of the profile's corpus (every character of the full text)."""
    return recipes.tokenizer(recipes.plan("mdlm", prof or get_profile()))


def _statements(source: str) -> tuple[set[str], list[str]]:
    """(``as`` aliases of its imports, ``ast.dump`` of each top-level statement) of ``source``,
    docstrings and import statements taken out of every body."""
    tree = ast.parse(textwrap.dedent(source))
    aliases = set()
    for node in ast.walk(tree):
        for name in ("body", "orelse", "finalbody"):
            body = getattr(node, name, None)
            if not isinstance(body, list):
                continue
            first = body[0] if body and name == "body" else None
            if isinstance(first, ast.Expr) and isinstance(getattr(first.value, "value", None), str):
                body = body[1:]
            imports = [s for s in body if isinstance(s, (ast.Import, ast.ImportFrom))]
            aliases |= {f"{a.name} as {a.asname}" for s in imports for a in s.names if a.asname}
            kept = [s for s in body if not isinstance(s, (ast.Import, ast.ImportFrom))]
            setattr(node, name, kept or ([ast.Pass()] if name == "body" else []))
    return aliases, [ast.dump(stmt) for stmt in tree.body]


def code_fingerprint(source: str) -> str:
    """The code of ``source`` as its sorted top-level statements (``ast.dump``), without
    comments, docstrings, layout or import statements (an ``as`` alias is kept: it renames):
    editing prose does not retrain the zoo, editing code does, and moving a function between
    hashed modules — or a module from ``a.py`` to ``pkg/a.py``, where its relative imports
    change — does not."""
    aliases, statements = _statements(source)
    return "\n".join(sorted(aliases) + sorted(statements))


def code_hash(code: tuple) -> str:
    """SHA-256 of the code of ``code`` (modules and functions): `sources_hash` of their source."""
    return sources_hash(inspect.getsource(unit) for unit in code)


def sources_hash(sources) -> str:
    """SHA-256 of source texts as one set of ``as`` aliases and one multiset of top-level
    statements (`code_fingerprint`'s parts): the same code hashes the same wherever it lives."""
    aliases, statements = set(), []
    for source in sources:
        more, found = _statements(source)
        aliases |= more
        statements += found
    return hashlib.sha256("\n".join(sorted(aliases) + sorted(statements)).encode()).hexdigest()


def training_code(plan: recipes.Plan) -> tuple:
    """What the weights of ``plan`` depend on: `TRAINING_CODE`, `train_model`, the data's
    builders and world, and the initialisation."""
    init = (recipes.symmetry_breaking_init,) if plan.recipe.init_std is not None else ()
    blocks = (block_diffusion,) if plan.recipe.block_size is not None else ()
    return (*TRAINING_CODE, train_model, recipes.texts, recipes.tokenizer,
            *WORLDS[plan.recipe.data], *init, *blocks,
            *FACTORY_CODE.get(plan.recipe.factory, ()))


def key(plan: recipes.Plan) -> str:
    """The cache folder's name of ``plan``: readable fields, then a hash of the plan's identity
    and of its `training_code`."""
    what = json.dumps({**plan.identity(), "code": code_hash(training_code(plan))},
                      sort_keys=True)
    cfg = plan.settings
    return (f"{plan.recipe.name}-{plan.corpus}-{plan.size}-L{cfg.seq_len}-S{cfg.steps}-"
            f"{hashlib.sha256(what.encode()).hexdigest()[:12]}")


def pretrained(kind: str, prof: Profile | None = None, *, corpus_name: str | None = None,
               steps: int | None = None, seed: int = 0, retrain: bool = False,
               progress: bool = True, device=None):
    """``(model, tok, info)`` for recipe ``kind`` (`recipes.RECIPES`), trained and cached if
    missing.

    ``corpus_name`` and ``steps`` override the profile's corpus and training budget (e.g. a
    small model of Python code for the infilling section).  ``info`` holds what the training
    measured: steps, seconds, tokens/s, final training loss and held-out loss (nats per token),
    and whether this call trained or loaded the model.  ``seed``: another training run of the
    same recipe (initial weights and batches; the book's models are seed 0).
    """
    plan = recipes.plan(kind, prof or get_profile(), corpus_name=corpus_name, steps=steps,
                        seed=seed)
    return load_or_train(plan, retrain=retrain, progress=progress, device=device)


def is_cached(kind: str, prof: Profile | None = None, *, corpus_name: str | None = None,
              steps: int | None = None) -> bool:
    """Would `pretrained` with these arguments load the model instead of training it?"""
    plan = recipes.plan(kind, prof or get_profile(), corpus_name=corpus_name, steps=steps)
    return (cache_dir() / key(plan) / "train_info.json").is_file()


def pretrained_qa(kind: str, prof: Profile | None = None, *, seed: int = 0,
                  retrain: bool = False, progress: bool = True, device=None):
    """``(model, tok, info)``: the QA ``kind`` ("diffusion" or "ar"; recipes ``"qa-diffusion"``
    and ``"qa-ar"``), trained once and cached.

    Both share the tokenizer (BPE, 320 ids, trained on the pairs), the pairs, size and steps."""
    if kind not in QA_KINDS:
        raise ValueError(f"kind must be one of {list(QA_KINDS)}, got {kind!r}")
    return pretrained(f"qa-{kind}", prof, seed=seed, retrain=retrain, progress=progress,
                      device=device)


def pretrained_block(block_size: int, init: str = "ar", prof: Profile | None = None, *,
                     retrain: bool = False, progress: bool = True, device=None):
    """``(model, tok, info)``: a block-diffusion GPT-2 (``shift=True``) on the book language,
    recipe `recipes.block` (``"grammar-block{block_size}-{init}"``), trained once and cached.
    ``init="ar"`` starts from the zoo's ``"grammar-ar"`` weights (A2D: the causal mask becomes
    the block mask, the next-token head is kept), ``"scratch"`` from a random GPT-2 of the same
    size.  ``info["loss"]`` and ``info["eval"]`` hold the training and held-out loss curves."""
    plan = recipes.plan(recipes.block(block_size, init), prof or get_profile())
    return load_or_train(plan, retrain=retrain, progress=progress, device=device)


def load_or_train(plan: recipes.Plan, *, retrain: bool = False, progress: bool = True,
                  device=None):
    """``(model, tok, info)`` of ``plan``: loaded from ``cache_dir() / key(plan)``, else trained
    (`train_model`) and saved there.  Two processes (nbval workers) never train it twice: the
    second waits on the folder's lock, then loads."""
    folder = cache_dir() / key(plan)
    folder.mkdir(parents=True, exist_ok=True)
    with file_lock(folder / ".lock"):
        if (folder / "train_info.json").is_file() and not retrain:
            model, tok = load(folder, device=device or get_device())
            info = json.loads((folder / "train_info.json").read_text())
            return model.eval(), tok, {**info, "trained_now": False}
        model, tok, hist = train_model(plan, folder / "checkpoints", progress, device)
        info = {"kind": plan.recipe.name, "profile": plan.profile,
                "seed": plan.settings.seed, "steps": hist.steps,
                "seconds": round(hist.seconds, 1),  # optimisation steps, all sessions of a resume
                "tokens_per_s": round(hist.tokens_per_s), "final_loss": hist.final_loss(),
                "held_out_loss": hist.eval[-1][1] if hist.eval else None, "loss": hist.loss,
                "eval": hist.eval}
        save(model, tok, folder)
        (folder / "train_info.json").write_text(json.dumps(info))
        return model.eval(), tok, {**info, "trained_now": True}


def train_model(plan: recipes.Plan, checkpoints: Path, progress: bool = True, device=None):
    """``(model, tok, History)``: ``plan``'s model trained from its seed (``settings.seed``),
    resuming from the last checkpoint in ``checkpoints`` if one is there; from the trained model
    of ``plan.start``
    (itself loaded or trained) where the recipe names one, and made a block model where it has
    a ``block_size``."""
    if plan.start is not None:
        model, tok, _ = load_or_train(plan.start, progress=progress, device=device)
    seed_everything(plan.settings.seed)
    texts, held_out = recipes.texts(plan)
    if plan.start is None:
        tok = recipes.tokenizer(plan)
        model = FACTORIES[plan.recipe.factory](tok, size=plan.size,
                                               max_length=plan.settings.seq_len)
    if plan.recipe.init_std is not None:
        recipes.symmetry_breaking_init(model, plan.recipe.init_std)
    if plan.recipe.block_size is not None:
        block_diffusion.as_block_model(model, plan.recipe.block_size, shift=True)
    hist = train(model, tok, texts, plan.settings.with_(progress=progress), eval_texts=held_out,
                 checkpoint_dir=checkpoints, resume=True, device=device)
    return model, tok, hist
