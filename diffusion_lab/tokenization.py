"""Tokenizers: one token per character, or byte-level BPE, both with [MASK] and friends.

Both are ordinary ``transformers`` fast tokenizers whose special tokens are `SPECIAL_TOKENS` at
ids 0..4 (``[PAD] [UNK] [CLS] [SEP] [MASK]``), so models, saving and decoding are the standard
machinery.  Both also have an end-of-answer token `EOS_TOKEN` (``[EOS]``, the tokenizer's
``eos_token``): the last id of a character vocabulary (so the ids of older vocabularies are
unchanged and their cached models still load), id 5 of a BPE one.  A model learns to write it
where an answer ends (``objective="sft"``); `sampling.generate` cuts ``texts`` there.
`encode_corpus` turns a whole corpus into one 1-D id tensor; for a character tokenizer it is a
vectorised table lookup (5M characters in well under a second).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from .settings import check_int

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
EOS_TOKEN = "[EOS]"
_SPECIAL_KWARGS = dict(
    pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
    eos_token=EOS_TOKEN,
)


def as_text_list(texts: str | Iterable[str], arg: str = "texts") -> list[str]:
    items = [texts] if isinstance(texts, str) else list(texts)
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise TypeError(f"{arg}[{i}] must be a str; got {type(t).__name__}")
    return items


class CharTokenizer(PreTrainedTokenizerFast):
    """One token per character: ids 0..4 are `SPECIAL_TOKENS`, then the sorted characters.

    A thin `transformers` fast tokenizer over a `tokenizers.Tokenizer` (WordLevel model, a
    pre-tokenizer that isolates every character, spaces and newlines included, and a decoder that
    concatenates). No [CLS]/[SEP] is inserted automatically, decoding inserts no spaces, the
    string "[MASK]" inside a text is the single mask token and unseen characters become [UNK].

    Saving: ``save_pretrained`` writes ``tokenizer_class: "CharTokenizer"``; transformers 5
    resolves that unknown name to its generic ``TokenizersBackend`` (= ``PreTrainedTokenizerFast``)
    so ``AutoTokenizer.from_pretrained(dir)`` loads an equivalent tokenizer of that base class,
    while ``CharTokenizer.from_pretrained(dir)`` gives back a ``CharTokenizer``.
    """

    @classmethod
    def from_texts(cls, texts: str | Iterable[str], *, extra_chars: str = "") -> CharTokenizer:
        """Vocabulary: special tokens, the sorted distinct characters (+ ``extra_chars``), [EOS]."""
        items = as_text_list(texts)
        if not isinstance(extra_chars, str):
            raise TypeError(f"extra_chars must be a str; got {type(extra_chars).__name__}")
        chars = sorted(set(extra_chars).union(*map(set, items)))
        if not chars:
            raise ValueError("texts and extra_chars contain no characters: the vocabulary is empty")
        vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
        vocab.update({c: len(SPECIAL_TOKENS) + i for i, c in enumerate(chars)})
        vocab[EOS_TOKEN] = len(vocab)
        backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
        backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
        backend.decoder = decoders.Fuse()
        backend.add_special_tokens(
            [AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS + [EOS_TOKEN]]
        )
        return cls(tokenizer_object=backend, clean_up_tokenization_spaces=False, **_SPECIAL_KWARGS)


def _line_chunks(texts: list[str], lines_per_chunk: int = 1000) -> Iterator[str]:
    for text in texts:
        lines = text.splitlines(keepends=True)
        for i in range(0, len(lines), lines_per_chunk):
            yield "".join(lines[i : i + lines_per_chunk])


def train_tokenizer(texts: str | Iterable[str], vocab_size: int = 2048) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer (GPT-2 style) with `SPECIAL_TOKENS` at ids 0..4, [EOS] 5.

    Every string is encodable (the 256 byte symbols are always in the vocabulary) and
    ``decode(encode(s)) == s``. ``vocab_size`` counts special tokens, bytes and merges.
    """
    items = as_text_list(texts)
    min_size = len(SPECIAL_TOKENS) + 1 + 256
    check_int(vocab_size, "vocab_size", min_size, note=f" ({len(SPECIAL_TOKENS) + 1} special "
              "tokens + 256 byte symbols, the rest are merges)")
    backend = Tokenizer(models.BPE(unk_token=None))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[*SPECIAL_TOKENS, EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_line_chunks(items), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, clean_up_tokenization_spaces=False, **_SPECIAL_KWARGS
    )


def require_mask_token(tok: PreTrainedTokenizerBase) -> int:
    """Return ``tok.mask_token_id``; a tokenizer without a mask token cannot drive diffusion."""
    mask_id = getattr(tok, "mask_token_id", None)
    if mask_id is None:
        raise ValueError(
            f"tokenizer has no mask token ({type(tok).__name__}.mask_token is None): build it with "
            "dl.CharTokenizer.from_texts or dl.train_tokenizer, or pass a tokenizer whose "
            "mask_token is set"
        )
    return int(mask_id)


def anchor_id(tok: PreTrainedTokenizerBase) -> int:
    """The id at position 0 of every row: ``[CLS]`` if the tokenizer has one, else ``BOS``.

    The anchor is never masked and never a target; an autoregressive model reads it as BOS."""
    for attr in ("cls_token_id", "bos_token_id"):
        token_id = getattr(tok, attr, None)
        if token_id is not None:
            return int(token_id)
    raise ValueError(f"tokenizer has neither a cls_token nor a bos_token ({type(tok).__name__}): "
                     "one of them anchors position 0 of every row")


def require_token_id(tok: PreTrainedTokenizerBase, attr: str) -> int:
    token_id = getattr(tok, f"{attr}_id", None)
    if token_id is None:
        raise ValueError(f"tokenizer has no {attr} ({type(tok).__name__}.{attr} is None)")
    return int(token_id)


def _char_table(tok) -> np.ndarray | None:
    """For a one-character-per-token vocabulary: code point -> id (unknown -> [UNK]), else None."""
    cached = getattr(tok, "_diffusion_lab_char_table", None)
    if cached is not None:
        return cached if len(cached) else None
    vocab = tok.get_vocab()
    special = set(tok.all_special_tokens)
    chars = {t: i for t, i in vocab.items() if t not in special}
    table = np.zeros(0, dtype=np.int64)
    if chars and all(len(t) == 1 for t in chars) and tok.unk_token_id is not None:
        table = np.full(max(map(ord, chars)) + 1, tok.unk_token_id, dtype=np.int64)
        for t, i in chars.items():
            table[ord(t)] = i
    tok._diffusion_lab_char_table = table
    return table if len(table) else None


def encode_corpus(tok: PreTrainedTokenizerBase, text: str) -> torch.LongTensor:
    """Encode ``text`` into one 1-D id tensor, no special tokens added.

    A literal "[MASK]" (or another special-token string) in the text becomes that special token.
    Character tokenizers take a vectorised lookup (identical ids, ~50x faster); others a batched
    call into the Rust tokenizer, chunked by lines.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str; got {type(text).__name__}")
    table = _char_table(tok)
    if table is not None and not any(s in text for s in tok.all_special_tokens):
        points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        ids = np.where(points < len(table), table[np.minimum(points, len(table) - 1)],
                       tok.unk_token_id)
        return torch.from_numpy(ids)
    backend = getattr(tok, "backend_tokenizer", None)
    chunks = list(_line_chunks([text]))
    if backend is not None:  # one parallel batch call into the Rust tokenizer
        pieces = [enc.ids for enc in backend.encode_batch(chunks, add_special_tokens=False)]
    else:
        pieces = [tok.encode(chunk, add_special_tokens=False) for chunk in chunks]
    if not pieces:
        return torch.zeros(0, dtype=torch.long)
    return torch.from_numpy(np.concatenate([np.asarray(p, dtype=np.int64) for p in pieces]))


