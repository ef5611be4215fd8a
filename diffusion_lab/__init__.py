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
reader adds a sampler with ``@dl.register_strategy("name")`` (see `strategies`).

The house (``book/architecture.md``): the lineage's core is the flat top level of the package —
``dl.data``, ``dl.noise``, ``dl.objectives``, ``dl.train``, ``dl.sampling``, ``dl.strategies``,
``dl.metrics``, ``dl.stats``, ... and ``dl.viz`` (matplotlib, ipywidgets: imported on first use,
so ``import diffusion_lab`` stays light) — and four wings that no core module imports:
``dl.worlds`` (grammar, puzzles, questions), ``dl.course`` (profiles, the model zoo, notebook
helpers), ``dl.export`` (the browser's ONNX + JSON) and ``dl.classroom`` (editions, exercises,
grading). ``dl.zoo``, ``dl.notebook``, ``dl.qa`` and ``dl.exercises`` are short names for the
wing modules every chapter calls.
"""

import importlib

# The core modules the chapters reach as dl.<module>, and the four wings.
from . import (  # noqa: F401
    categorical,
    checkpoint,
    classroom,
    course,
    data,
    denoiser,
    export,
    metrics,
    models,
    noise,
    objectives,
    reference_samplers,
    runtime,
    sampling,
    stats,
    strategies,
    worlds,
)
from .classroom import exercises
from .course import notebook, zoo
from .course.profiles import profile
from .data import CharTokenizer, load_corpus, train_tokenizer
from .models import load_pretrained, tiny_ar, tiny_mlm
from .runtime import cache_dir, get_device, seed_everything
from .sampling import generate
from .settings import SampleSettings, TrainSettings
from .strategies import STRATEGIES, register_strategy
from .train import train
from .worlds import qa

__version__ = "0.1.0"

__all__ = [
    # the core: data, models, training, sampling
    "CharTokenizer", "SampleSettings", "STRATEGIES", "TrainSettings", "cache_dir", "generate",
    "get_device", "load_corpus", "load_pretrained", "profile", "register_strategy",
    "seed_everything", "tiny_ar", "tiny_mlm", "train", "train_tokenizer", "viz",
    # the wings, and the wing modules every chapter calls
    "classroom", "course", "export", "worlds", "exercises", "notebook", "qa", "zoo",
]


def __getattr__(name: str):
    """Import ``dl.viz`` (matplotlib, ipywidgets) on first use: PEP 562."""
    if name == "viz":
        return importlib.import_module(".viz", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
