r"""Export a book model for the browser: one ONNX graph plus the JSON a JavaScript sampler needs.

The website's live panel (``book/_static/live/``) runs the reverse process of ``sampling`` in the
reader's browser with ``onnxruntime-web``.  What it needs from Python is two files per model:

* ``<name>.onnx`` — the denoiser as a graph ``input_ids (B, L) int64 -> logp (B, L, V) float32``
  where

  $$ \mathrm{logp}_{b,i,v} = \log p_\theta(x^i = v \mid z_t) = \mathrm{log\_softmax}_v\big(
     \ell_{b,i,v} - \infty \cdot [v \in \text{special}]\big), $$

  i.e. the model's logits with the special tokens ([MASK], [CLS], [PAD], ... — the ones
  `sampling.generate` bans) set to $-\infty$ *before* the softmax.  The sampler then needs no
  vocabulary bookkeeping: the confidence of a proposal is ``exp(logp)`` and a tempered draw is
  ``argmax(logp / T + Gumbel)`` (tempering log-probabilities or logits gives the same
  distribution: they differ by a constant per row).
* ``<name>.json`` — the tokenizer (vocabulary, how text splits into tokens and how tokens join),
  the special ids (mask, the [CLS] anchor that is never masked, pad, eos when the tokenizer has
  one), the banned ids, the longest text the model sees, the profile's generation defaults, the
  strategies' settings and the confidence palette of ``viz``, so the page draws the animation
  with the library's colours.

Exports are cached under ``dl.cache_dir() / "export"``, keyed on a hash of the weights, the
vocabulary and `EXPORT_VERSION` — the same model always maps to the same files, a retrained one
to new ones.  Only tokenizers the JavaScript side can reproduce exactly are accepted: one token per
character (``CharTokenizer``), one token per whitespace-separated word (a word-level grammar) or
GPT-2's byte-level BPE (``train_tokenizer``, the question-answering models: `export.bpe`);
`tokenizer_spec` checks that claim against the real tokenizer on a probe text.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import torch

from ..course.profiles import Profile
from ..course.profiles import profile as get_profile
from ..denoiser import banned_token_ids
from ..models import is_causal_lm, max_positions
from ..runtime import cache_dir, file_lock
from ..strategies import STRATEGIES
from ..tokenization import anchor_id, require_mask_token
from .bpe import byte_level_spec

EXPORT_VERSION = 2
MAX_BYTES = 8 * 2**20  # each exported model <= 8 MB: what a reader's browser downloads
DTYPES = ("float32", "float16")
# What book/_static/live/sampler.js implements: its strategies and the options it reads.
LIVE_STRATEGIES = ("low_confidence", "threshold", "random_remask", "confidence_weighted",
                   "reread_remask", "ancestral")
LIVE_OPTIONS = ("schedule", "threshold", "remask_scale", "remask_power", "remask_below", "score",
                "rounds")
OPSET = 18


class LogProbs(torch.nn.Module):
    """``input_ids (B, L) -> log p (B, L, V)``, special tokens at -inf (the exported graph)."""

    def __init__(self, model: torch.nn.Module, banned: list[int], vocab_size: int):
        super().__init__()
        self.model = model
        ban = torch.zeros(vocab_size, dtype=torch.bool)
        ban[banned] = True
        self.register_buffer("banned", ban, persistent=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        logits = self.model(input_ids=input_ids).logits.float()  # (B, L, V)
        return logits.masked_fill(self.banned, float("-inf")).log_softmax(-1)


def _special(tok) -> dict:
    mask = require_mask_token(tok)
    cls = anchor_id(tok)  # a ValueError if the tokenizer has neither [CLS] nor BOS
    return {"mask": mask, "cls": cls, "pad": tok.pad_token_id, "eos": tok.eos_token_id,
            "unk": tok.unk_token_id}


def tokenizer_spec(tok) -> dict:
    """How the JavaScript sampler tokenizes: ``{"vocab", "split", "join", "special", "banned"}``.

    ``split`` is ``"char"`` (one token per character, spaces and newlines included),
    ``"whitespace"`` (one token per word) or ``"bpe"`` (GPT-2's byte-level BPE, with ``"merges"``
    and the pre-tokenizer's ``"pattern"``: `export.bpe`); ``join`` is what goes between decoded
    tokens.  The rule is checked against ``tok`` on a probe text; a tokenizer that follows none
    of them raises ``ValueError``.
    """
    vocab_map = tok.get_vocab()
    size = max(vocab_map.values()) + 1
    vocab = [""] * size
    for token, i in vocab_map.items():
        vocab[i] = token
    special_ids = sorted(set(tok.all_special_ids))
    specials = {vocab[i] for i in special_ids}
    plain = [t for t in vocab if t and t not in specials]
    if not plain:
        raise ValueError("the tokenizer has no ordinary tokens to export")
    probe = plain[:: max(1, len(plain) // 40)][:40]

    def ids(text: str) -> list[int]:
        return tok(text, add_special_tokens=False)["input_ids"]

    bpe = byte_level_spec(tok)  # None unless BPE; ValueError for a BPE bpe.js cannot follow
    if bpe is not None:
        return {"vocab": vocab, "split": "bpe", "join": "", **bpe, "special": _special(tok),
                "banned": banned_token_ids(tok)}
    split = join = None
    if all(len(t) == 1 for t in plain):
        text = "".join(probe)
        if ids(text) == [vocab_map[c] for c in text]:
            split = "char"
    elif not any(c.isspace() for t in plain for c in t):
        text = " ".join(probe)
        if ids(text) == [vocab_map[w] for w in text.split()]:
            split = "whitespace"
    if split is None:
        raise ValueError(f"tokenizer {type(tok).__name__} is neither one token per character, "
                         "one per whitespace-separated word nor byte-level BPE; the live sampler "
                         "cannot reproduce it")
    a, b = probe[0], probe[-1]
    decoded = tok.decode([vocab_map[a], vocab_map[b]], skip_special_tokens=False,
                         clean_up_tokenization_spaces=False)
    for sep in ("", " "):
        if decoded == a + sep + b:
            join = sep
    if join is None:
        raise ValueError(f"decoding {[a, b]} gave {decoded!r}: tokens must join with '' or ' '")
    return {"vocab": vocab, "split": split, "join": join, "special": _special(tok),
            "banned": banned_token_ids(tok)}  # the one denoiser's banned set (denoiser.py)


def weights_key(model: torch.nn.Module, tok) -> str:
    """A hash of the weights, the vocabulary and `EXPORT_VERSION`: the export's cache key."""
    h = hashlib.sha256(f"v{EXPORT_VERSION}".encode())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    h.update(json.dumps(sorted(tok.get_vocab().items())).encode())
    return h.hexdigest()[:16]


def export_onnx(model: torch.nn.Module, tok, path: str | Path, dtype: str = "float32") -> Path:
    """Write the `LogProbs` graph of ``model`` to ``path`` (dynamic batch and length).

    ``dtype="float16"`` halves the file by storing the weights in half precision (the output
    stays float32 log-probabilities).  Raises ``ValueError`` past `MAX_BYTES`.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
    if is_causal_lm(model):
        raise ValueError(f"model must be a masked LM, got the causal {type(model).__name__}")
    import copy

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = copy.deepcopy(model).cpu().eval()
    if dtype == "float16":
        net = net.half()
    spec = tokenizer_spec(tok)
    wrapped = LogProbs(net, spec["banned"], len(spec["vocab"])).eval()
    example = torch.full((1, 16), spec["special"]["mask"], dtype=torch.long)
    example[:, 0] = spec["special"]["cls"]
    batch, length = torch.export.Dim("batch", max=4096), torch.export.Dim("length", min=2,
                                                                           max=max_positions(model))
    with torch.no_grad():
        program = torch.onnx.export(
            wrapped, (example,), dynamo=True, input_names=["input_ids"], output_names=["logp"],
            dynamic_shapes={"input_ids": {0: batch, 1: length}}, opset_version=OPSET,
            external_data=False, verbose=False)
    program.save(str(path))
    size = path.stat().st_size
    if size > MAX_BYTES:
        path.unlink()
        raise ValueError(f"the exported model is {size / 2**20:.1f} MiB, over the "
                         f"{MAX_BYTES / 2**20:.0f} MiB budget; use dtype='float16' or a smaller "
                         "model")
    return path


def live_options() -> dict:
    """The defaults of `LIVE_OPTIONS`, as the live strategies declare them in the registry
    (``dl.STRATEGIES[name].options``)."""
    declared = {}
    for name in LIVE_STRATEGIES:
        for key, value in STRATEGIES[name].options.items():
            declared.setdefault(key, value)
    return {key: declared[key] for key in LIVE_OPTIONS}


def settings(model, tok, prof: Profile, name: str) -> dict:
    """The JSON the page loads next to ``<name>.onnx``."""
    from ..viz.slots import N_BINS, palette

    spec = tokenizer_spec(tok)
    return {
        "name": name,
        "format": EXPORT_VERSION,
        "inputs": {"ids": "input_ids", "logp": "logp"},
        "output": "log-probabilities (B, L, V), special tokens at -inf",
        "max_length": max_positions(model) - 1,  # text tokens; position 0 is the [CLS] anchor
        "defaults": {"length": min(prof.gen_length, max_positions(model) - 1),
                     "steps": prof.gen_steps, "strategy": "low_confidence", "temperature": 1.0,
                     "seed": 0, "profile": prof.name},
        "options": live_options(),
        "palette": list(palette()),
        "bins": N_BINS,
        **spec,
    }


def export(kind: str = "mdlm", prof: Profile | None = None, *, dtype: str = "float32",
           force: bool = False, progress: bool = False, **zoo_kwargs) -> dict:
    """Export ``dl.zoo.pretrained(kind, prof)`` (cached); return ``{"onnx", "json", "key",
    "bytes"}``.  ``kind="qa"`` exports ``dl.zoo.pretrained_qa("diffusion", prof)`` (`export.qa`);
    a ``grammar-*`` model's JSON carries the grammar's membership test (`export.grammar`).

    The files live in ``cache_dir() / "export" / f"{kind}-{profile}-{key}"``: a second call with
    the same weights returns them at once; ``force=True`` re-exports.
    """
    from ..course import zoo

    prof = prof or get_profile()
    if kind == "qa":  # chapter 8's question-answering diffusion model (export_qa)
        from .qa import qa_settings

        model, tok, _ = zoo.pretrained_qa("diffusion", prof, progress=progress, **zoo_kwargs)
        return export_model(model, tok, kind, prof, dtype=dtype, force=force,
                            extra=qa_settings(model, tok))
    model, tok, _ = zoo.pretrained(kind, prof, progress=progress, **zoo_kwargs)
    extra = None
    if kind.startswith("grammar-"):  # the book's grammar: the panel checks each sentence exactly
        from .grammar import grammar_settings

        extra = grammar_settings()
    return export_model(model, tok, kind, prof, dtype=dtype, force=force, extra=extra)


def export_model(model, tok, name: str, prof: Profile | None = None, *, dtype: str = "float32",
                 force: bool = False, extra: dict | None = None) -> dict:
    """`export` for any masked LM and tokenizer (the tests use a tiny untrained one); ``extra``
    is merged into the JSON (e.g. the QA panel's defaults)."""
    if extra is not None and not isinstance(extra, dict):
        raise TypeError(f"extra must be a dict or None, got {type(extra).__name__}")
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"name must be letters, digits, '-' or '_', got {name!r}")
    prof = prof or get_profile()
    key = f"{weights_key(model, tok)}-{dtype}"
    if extra:  # what the page reads beside the graph is part of the export too
        blob = json.dumps(extra, sort_keys=True, ensure_ascii=False).encode()
        key += "-" + hashlib.sha256(blob).hexdigest()[:8]
    folder = cache_dir() / "export" / f"{name}-{prof.name}-{key}"
    onnx_path, json_path = folder / f"{name}.onnx", folder / f"{name}.json"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(folder.parent / f".{folder.name}.lock"):  # two test workers export it once
        if force or not (onnx_path.is_file() and json_path.is_file()):
            _write(model, tok, name, prof, dtype, key, folder, extra or {})
    return {"onnx": onnx_path, "json": json_path, "key": key,
            "bytes": {"onnx": onnx_path.stat().st_size, "json": json_path.stat().st_size}}


def _write(model, tok, name, prof, dtype, key, folder, extra) -> None:
    """Export into ``<folder>.tmp``, then rename: a half-written export is never found."""
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    export_onnx(model, tok, tmp / f"{name}.onnx", dtype)
    meta = {**settings(model, tok, prof, name), **extra}
    if "defaults" in extra:
        meta["defaults"]["profile"] = prof.name
    meta["key"], meta["dtype"] = key, dtype
    (tmp / f"{name}.json").write_text(json.dumps(meta, ensure_ascii=False))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)


def script_wrapper(path: str | Path, key: str) -> Path:
    """Write ``<path>.js``: ``DLLive.register(key, "<base64 of path>")``.

    A page opened from disk (``file://``) may run a ``<script>`` but not ``fetch`` a file, so the
    site ships every file the panel fetches a second time in this form (``panel.js`` loads it
    only on ``file://``; base64 is a third larger)."""
    import base64

    path = Path(path)
    out = path.with_name(path.name + ".js")
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    out.write_text(f"DLLive.register({json.dumps(key)}, \"{data}\");\n", encoding="ascii")
    return out


def publish(exported: dict, folder: str | Path) -> list[Path]:
    """Copy one export (what `export` returns) into ``folder`` as ``<name>.onnx`` and
    ``<name>.json``, each with its ``file://`` wrapper; return the files written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for src in (Path(exported["onnx"]), Path(exported["json"])):
        dst = folder / src.name
        shutil.copyfile(src, dst)
        written += [dst, script_wrapper(dst, dst.name)]
    return written
