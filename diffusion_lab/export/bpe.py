r"""Byte-level BPE for the browser: what ``book/_static/live/bpe.js`` needs, and a check of it.

GPT-2's tokenizer (Radford et al. 2019; Sennrich et al. 2016 for BPE) encodes a text in three
steps, all reproduced by ``bpe.js`` from the JSON this module writes:

1. **pre-tokenize**: split the text with the regular expression `GPT2_PATTERN` (contractions,
   letters, digits, other symbols, each optionally after one space; runs of whitespace);
2. **bytes to symbols**: map each UTF-8 byte of a piece to one printable character
   (`bytes_to_unicode`: a space becomes "Ġ", a newline "Ċ");
3. **merge**: start from single symbols and repeatedly join the adjacent pair whose merge rule
   comes first in ``merges`` (rank $r$ = its line), until no pair has a rule; each final symbol
   string is one vocabulary entry.

Decoding concatenates the tokens' strings and maps the symbols back to bytes (UTF-8).
`byte_level_spec` accepts only the configuration above (no normalizer, no prefix space, no
dropout, no continuing-subword prefix); anything else is refused, and `encode` — the same
algorithm as ``bpe.js``, in Python — is checked against the real tokenizer on a probe text.
"""

from __future__ import annotations

import json

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
PROBE = ("is 3+4=7? what is 12+9? count 3 to 6?  yes, no.\n\tHe'll say: 'don't' — "
         "café 中文 \u00e9t\u00e9 ~!@#$%^&*()_+{}|:\"<>?  \n\n  end ")


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table: printable bytes map to themselves, the others to chr(256 + k)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def byte_level_spec(tok) -> dict | None:
    """``{"merges", "pattern"}`` for a byte-level BPE ``tok``; None when ``tok`` is not BPE.

    Raises ``ValueError`` for a BPE tokenizer configured in a way ``bpe.js`` does not reproduce."""
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:
        return None
    cfg = json.loads(backend.to_str())
    model = cfg.get("model") or {}
    if model.get("type") != "BPE":
        return None
    pre, dec = cfg.get("pre_tokenizer") or {}, cfg.get("decoder") or {}
    problems = []
    if cfg.get("normalizer") is not None:
        problems.append(f"a normalizer ({cfg['normalizer'].get('type')})")
    if pre.get("type") != "ByteLevel" or pre.get("add_prefix_space") or not pre.get("use_regex"):
        problems.append(f"pre_tokenizer {pre} (needs ByteLevel, add_prefix_space=False, "
                        "use_regex=True)")
    if dec.get("type") != "ByteLevel":
        problems.append(f"decoder {dec.get('type')} (needs ByteLevel)")
    for key in ("dropout", "continuing_subword_prefix", "end_of_word_suffix"):
        if model.get(key):
            problems.append(f"BPE {key}={model[key]!r}")
    if model.get("byte_fallback") or model.get("ignore_merges"):
        problems.append("BPE byte_fallback / ignore_merges")
    if problems:
        raise ValueError("the live sampler cannot reproduce this BPE tokenizer: "
                         + "; ".join(problems))
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    spec = {"merges": merges, "pattern": GPT2_PATTERN}
    vocab = tok.get_vocab()
    got = encode(spec, vocab, PROBE)
    want = tok(PROBE, add_special_tokens=False)["input_ids"]
    if got != want:
        raise ValueError(f"the exported BPE rule encodes the probe text as {got[:12]}..., the "
                         f"tokenizer as {want[:12]}...: the live sampler cannot reproduce it")
    return spec


def encode(spec: dict, vocab: dict[str, int], text: str) -> list[int]:
    """``bpe.js``'s algorithm in Python (the export's self-check; not used to tokenize)."""
    import regex

    table = bytes_to_unicode()
    ranks = {tuple(m.split(" ")): r for r, m in enumerate(spec["merges"])}
    ids = []
    for piece in regex.findall(spec["pattern"], text):
        word = [table[b] for b in piece.encode("utf-8")]
        while len(word) > 1:
            pairs = [(ranks.get((a, b), float("inf")), i) for i, (a, b) in
                     enumerate(zip(word, word[1:], strict=False))]
            rank, _ = min(pairs)
            if rank == float("inf"):
                break
            a, b = spec["merges"][rank].split(" ")
            out, i = [], 0
            while i < len(word):  # join every (a, b), left to right
                if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            word = out
        ids += [vocab[s] for s in word]
    return ids
