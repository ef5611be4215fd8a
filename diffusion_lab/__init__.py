"""diffusion-lab: BERT's masked-language-model loss is one step of a text diffusion model.

The public API (the book, the tests and outside users rely on these names)::

    import diffusion_lab as dl
    dl.get_device(); dl.seed_everything(0); dl.profile()
    text = dl.load_corpus("shakespeare")
    tok = dl.CharTokenizer.from_texts([text])            # or dl.train_tokenizer([text])
    model = dl.tiny_mlm(tok, size="s", max_length=128)    # ModernBertForMaskedLM
    ar = dl.tiny_ar(tok, size="s", max_length=128)        # GPT2LMHeadModel
    hist = dl.train(model, tok, text, objective="mdlm", steps=1000, batch_size=32, seq_len=128,
                    lr=2e-3, seed=0)
    traj = dl.generate(model, tok, prompts=["ROMEO:"], length=128, steps=32,
                       strategy="low_confidence", seed=0)
    traj.texts, traj.frames
    pairs = dl.qa.pairs(4000, seed=0)                     # questions with exact checkers
    dl.train(model, tok, pairs, objective="sft", seq_len=20)  # LLaDA's SFT; answers end at [EOS]

Settings are frozen dataclasses (`SampleSettings`, `TrainSettings`) behind the keyword forms; a
reader adds a sampler with ``@dl.register_strategy("name")`` (see `strategies`).  ``dl.viz``
(matplotlib, ipywidgets) is imported on first use, so ``import diffusion_lab`` stays light.
"""

import importlib

from . import (
    block_diffusion,
    block_sampling,
    categorical,
    denoiser,
    exercises,
    export,
    grammar,
    metrics,
    noise,
    notebook,
    objectives,
    qa,
    reference_samplers,
    sampling,
    stats,
    strategies,
    tasks,
    zoo,
)
from .config import PROFILES, Profile, cache_dir, get_device, profile, seed_everything
from .data import (
    CORPORA,
    CharTokenizer,
    CorpusUnavailableError,
    load_corpus,
    split_corpus,
    train_tokenizer,
)
from .models import load, load_pretrained, save, tiny_ar, tiny_mlm
from .objectives import OBJECTIVES
from .sampling import generate
from .settings import SampleSettings, TrainSettings
from .strategies import STRATEGIES, register_strategy
from .train import History, train
from .trajectory import Frame, Trajectory

__version__ = "0.1.0"

__all__ = [
    "CORPORA", "OBJECTIVES", "PROFILES", "STRATEGIES", "CharTokenizer", "CorpusUnavailableError",
    "Frame", "History", "Profile", "SampleSettings", "TrainSettings", "Trajectory",
    "block_diffusion", "block_sampling", "cache_dir",
    "categorical", "denoiser", "exercises", "export", "generate", "get_device", "grammar", "load",
    "load_corpus", "load_pretrained", "metrics", "noise", "notebook", "objectives", "profile", "qa",
    "reference_samplers", "register_strategy", "sampling", "save", "seed_everything",
    "split_corpus", "stats", "strategies", "tasks", "tiny_ar", "tiny_mlm", "train",
    "train_tokenizer", "viz", "zoo",
]


def __getattr__(name: str):
    """Import ``dl.viz`` (matplotlib, ipywidgets) on first use: PEP 562."""
    if name == "viz":
        return importlib.import_module(".viz", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
