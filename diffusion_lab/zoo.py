"""The book's shared models: trained once per profile, cached on disk, loaded by every chapter.

A chapter calls ``dl.zoo.pretrained("mdlm")``: the first call trains the model with the profile's
budget and saves it (safetensors) under ``dl.cache_dir()``; later calls — in this chapter, the next
chapter, or the next build — load it in a second.  So the book spends its minutes on a few good
models instead of many poor ones.  Recipes:

* ``"mlm"``      — BERT's 15% / 80-10-10 objective (chapter 1; the "pretrained BERT" offline)
* ``"variable_rate"`` — the seed article's ten masking rates (chapter 3; old name ``"variable"``)
* ``"mdlm"``     — the masked-diffusion ELBO (chapters 4-6)
* ``"ar"``       — a GPT-2 of the same size, data and steps: baseline and judge
* ``"grammar-mdlm"``, ``"grammar-ar"`` — the same two on sentences of ``grammar.book_language()``
  (budget: ``grammar_metrics.TRAINING`` and ``STEPS``: the MDLM trains longer and starts from
  wide token embeddings, ``grammar_metrics.symmetry_breaking_init``), for the chapter on
  parallel decoding and the intro

and, for the closing chapter, `pretrained_qa`: a masked LM and a same-size GPT-2 fine-tuned
(``objective="sft"``) on the question-answer pairs of ``qa``, with a BPE tokenizer in which
"yes" and "no" are single tokens (so a forced "no" can be revised into "yes" in place).

The four character models share the corpus, tokenizer, size, sequence length, batch size and
step count of the profile, so comparisons between them are at equal compute (equal tokens seen);
the two grammar models share all but the step count.

The cache folder's name ends in a hash of the training settings and of the code of every module
that shapes the trained weights (`TRAINING_CODE`, docstrings and comments left out): change the
loss, the noise, the model or the loop, and the next call trains afresh — no version number to
remember to bump.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import inspect
import json
from contextlib import contextmanager

from . import categorical, data, denoiser, models, noise, objectives, qa, settings, tokenization
from . import train as train_module
from .config import Profile, cache_dir, get_device, seed_everything
from .config import profile as get_profile
from .models import load, save, tiny_ar, tiny_mlm
from .objectives import canonical_objective
from .settings import TrainSettings
from .train import train

RECIPES = ("mlm", "variable_rate", "mdlm", "ar")  # "variable" (the old name) is accepted too
GRAMMAR_RECIPES = ("grammar-mdlm", "grammar-ar")  # trained on dl.grammar.book_language()
TRAINING_CODE = (categorical, data, denoiser, models, noise, objectives, settings, tokenization,
                 train_module)


def corpus(prof: Profile | None = None) -> tuple[str, str]:
    """(train, held-out) text of the profile's corpus; held-out is the last 5%."""
    prof = prof or get_profile()
    if prof.corpus == "grammar":
        from . import grammar_metrics
        return grammar_metrics.corpus(prof)
    return data.split_corpus(data.load_corpus(prof.corpus), 0.05)


def tokenizer(prof: Profile | None = None) -> data.CharTokenizer:
    """The character tokenizer of the profile's corpus (every character of the full text)."""
    prof = prof or get_profile()
    if prof.corpus == "grammar":
        from .grammar import book_language
        return book_language().tokenizer()
    return data.CharTokenizer.from_texts([data.load_corpus(prof.corpus)])


def recipe(kind: str, prof: Profile) -> TrainSettings:
    """The `TrainSettings` the zoo trains ``kind`` with under profile ``prof``."""
    return TrainSettings(objective=kind.removeprefix("grammar-"), steps=prof.train_steps,
                         batch_size=prof.batch_size, seq_len=prof.seq_len, lr=prof.lr, seed=0,
                         warmup=prof.warmup, eval_every=prof.train_steps,
                         checkpoint_every=max(1, prof.train_steps // 4))


def code_fingerprint(source: str) -> str:
    """The code of ``source`` without comments, docstrings and layout (``ast.dump``): editing
    prose does not retrain the zoo, editing code does."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(getattr(first.value, "value", None), str):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def code_hash(extra: tuple = ()) -> str:
    """SHA-256 of the code of `TRAINING_CODE` and ``extra`` (modules or functions: what the
    trained weights depend on)."""
    digest = hashlib.sha256()
    for code in TRAINING_CODE + tuple(extra):
        digest.update(code_fingerprint(inspect.getsource(code)).encode())
    return digest.hexdigest()


def _grammar_code() -> tuple:
    """The language and its training recipe (not the metrics: a new metric retrains nothing)."""
    from . import grammar, grammar_metrics
    return (grammar, grammar_metrics.training_setup, grammar_metrics.corpus,
            grammar_metrics.symmetry_breaking_init)


def _key(kind: str, prof: Profile) -> str:
    cfg = dataclasses.asdict(recipe(kind, prof))
    cfg.pop("progress")  # a progress bar does not change the weights
    what = {"settings": cfg, "corpus": prof.corpus, "size": prof.model_size,
            "code": code_hash(_grammar_code() if kind in GRAMMAR_RECIPES else ())}
    if kind == "grammar-mdlm":
        from .grammar_metrics import EMBEDDING_STD
        what["embedding_std"] = EMBEDDING_STD
    what = json.dumps(what, sort_keys=True)
    return (f"{kind}-{prof.corpus}-{prof.model_size}-L{prof.seq_len}-S{prof.train_steps}-"
            f"{hashlib.sha256(what.encode()).hexdigest()[:12]}")


def pretrained(kind: str, prof: Profile | None = None, *, corpus_name: str | None = None,
               steps: int | None = None, retrain: bool = False, progress: bool = True,
               device=None):
    """``(model, tok, info)`` for a shared recipe, training and caching it if missing.

    ``corpus_name`` and ``steps`` override the profile's corpus and training budget (e.g. a
    small model of Python code for the infilling section).  ``info`` holds what the training
    measured: steps, seconds, tokens/s, final training loss and held-out loss (nats per token),
    and whether this call trained or loaded the model.
    """
    if kind not in GRAMMAR_RECIPES:
        kind = canonical_objective(kind)
    if kind not in RECIPES + GRAMMAR_RECIPES:
        raise ValueError(f"kind must be one of {list(RECIPES + GRAMMAR_RECIPES)}, got {kind!r}")
    prof = prof or get_profile()
    if kind in GRAMMAR_RECIPES:
        from .grammar_metrics import training_setup
        prof = training_setup(prof, kind)
    if corpus_name is not None or steps is not None:
        prof = prof.with_(corpus=corpus_name or prof.corpus, train_steps=steps or prof.train_steps)
    folder = cache_dir() / _key(kind, prof)
    folder.mkdir(parents=True, exist_ok=True)
    with _lock(folder / ".lock"):  # two processes (e.g. nbval workers) never train the same model
        return _load_or_train(kind, prof, folder, retrain, progress, device)


@contextmanager
def _lock(path):
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _load_or_train(kind, prof, folder, retrain, progress, device):
    if (folder / "train_info.json").is_file() and not retrain:
        model, tok = load(folder, device=device or get_device())
        info = json.loads((folder / "train_info.json").read_text())
        return model.eval(), tok, {**info, "trained_now": False}
    seed_everything(0)
    train_text, valid_text = corpus(prof)
    tok = tokenizer(prof)
    objective = kind.removeprefix("grammar-")
    factory = tiny_ar if objective == "ar" else tiny_mlm
    model = factory(tok, size=prof.model_size, max_length=prof.seq_len)
    if kind == "grammar-mdlm":
        from .grammar_metrics import EMBEDDING_STD, symmetry_breaking_init
        symmetry_breaking_init(model, EMBEDDING_STD)
    hist = train(model, tok, train_text, recipe(kind, prof).with_(progress=progress),
                 eval_texts=valid_text, checkpoint_dir=folder / "checkpoints", resume=True,
                 device=device)
    info = {"kind": kind, "profile": prof.name, "steps": hist.steps,
            "seconds": round(hist.seconds, 1),  # optimisation steps, all sessions of a resume
            "tokens_per_s": round(hist.tokens_per_s), "final_loss": hist.final_loss(),
            "held_out_loss": hist.eval[-1][1] if hist.eval else None, "loss": hist.loss}
    save(model, tok, folder)
    (folder / "train_info.json").write_text(json.dumps(info))
    return model.eval(), tok, {**info, "trained_now": True}


# (model size, seq_len, batch size, steps, lr) of the QA models per profile; cpu: ~70 s each.
# cpu, measured on 150 held-out questions (greedy): at 600 steps, lr 2e-3 the diffusion model
# answered 0.69 (sums 0.80) against AR's 0.89; at 1000 steps, lr 3e-3 both answer every sum and
# count (1.00), so the two can race at equal accuracy there; claims: 0.44 vs 0.74.
QA_BUDGET = {"cpu": ("s", 20, 64, 1000, 3e-3), "gpu": ("s", 20, 128, 3000, 1e-3),
             "smoke": ("xs", 20, 16, 20, 2e-3)}
QA_KINDS = ("diffusion", "ar")
QA_TRAIN_PAIRS = 4000  # seeded pairs of all three families (qa.pairs(4000, seed=0))


def qa_size(prof: Profile) -> str:
    """The model size of both QA models under ``prof``."""
    return QA_BUDGET.get(prof.name, QA_BUDGET["cpu"])[0]


def qa_tokenizer():
    """The QA models' tokenizer: byte-level BPE, 320 ids, trained on the seeded training pairs."""
    train_pairs = qa.pairs(QA_TRAIN_PAIRS, seed=0)
    return data.train_tokenizer([f"{q} {a}" for q, a in train_pairs], vocab_size=320)


def qa_recipe(prof: Profile) -> TrainSettings:
    """The `TrainSettings` of both QA models under ``prof``."""
    size, seq_len, batch, steps, lr = QA_BUDGET.get(prof.name, QA_BUDGET["cpu"])
    return TrainSettings(objective="sft", steps=steps, batch_size=batch, seq_len=seq_len, lr=lr,
                         seed=0, warmup=min(100, steps // 5 + 1))


def qa_key(kind: str, prof: Profile) -> str:
    """The cache folder name of QA model ``kind``: settings, code and ``qa`` source hashed."""
    cfg = dataclasses.asdict(qa_recipe(prof))
    cfg.pop("progress")
    what = json.dumps({"settings": cfg, "kind": kind, "n": QA_TRAIN_PAIRS, "code": code_hash(),
                       "qa": hashlib.sha256(inspect.getsource(qa).encode()).hexdigest()},
                      sort_keys=True)
    return f"qa-{kind}-{prof.name}-{hashlib.sha256(what.encode()).hexdigest()[:12]}"


def pretrained_qa(kind: str, prof: Profile | None = None, *, retrain: bool = False,
                  progress: bool = True, device=None):
    """``(model, tok, info)``: the QA ``kind`` ("diffusion" or "ar"), trained once and cached.

    Both share the tokenizer (BPE, 320 ids, trained on the pairs), the pairs, size and steps."""
    if kind not in QA_KINDS:
        raise ValueError(f"kind must be one of {list(QA_KINDS)}, got {kind!r}")
    prof = prof or get_profile()
    folder = cache_dir() / qa_key(kind, prof)
    folder.mkdir(parents=True, exist_ok=True)
    with _lock(folder / ".lock"):
        if (folder / "train_info.json").is_file() and not retrain:
            model, tok = load(folder, device=device or get_device())
            info = json.loads((folder / "train_info.json").read_text())
            return model.eval(), tok, {**info, "trained_now": False}
        model, tok, info = train_qa(kind, prof, progress=progress, device=device)
        save(model, tok, folder)
        (folder / "train_info.json").write_text(json.dumps(info))
        return model, tok, {**info, "trained_now": True}


def train_qa(kind: str, prof: Profile, *, seed: int = 0, progress: bool = True, device=None):
    """``(model, tok, info)``: QA model ``kind`` trained afresh with `qa_recipe`, initial weights
    and batches from ``seed`` (the zoo's model is seed 0; `bench/bench_qa_claims.py` trains
    others to measure the recipe, not one model)."""
    if kind not in QA_KINDS:
        raise ValueError(f"kind must be one of {list(QA_KINDS)}, got {kind!r}")
    seed_everything(seed)
    train_pairs = qa.pairs(QA_TRAIN_PAIRS, seed=0)
    tok = qa_tokenizer()
    recipe_ = qa_recipe(prof).with_(seed=seed, progress=progress)
    model = (tiny_ar if kind == "ar" else tiny_mlm)(tok, size=qa_size(prof),
                                                     max_length=recipe_.seq_len)
    hist = train(model, tok, train_pairs, recipe_, device=device)
    info = {"kind": kind, "profile": prof.name, "seed": seed, "steps": hist.steps,
            "seconds": round(hist.seconds, 1), "final_loss": hist.final_loss(),
            "loss": hist.loss}
    return model.eval(), tok, info
