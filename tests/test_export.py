"""`diffusion_lab.export`: the ONNX graph equals the torch model, the JSON describes the tokenizer
the JavaScript sampler reproduces, exports are cached by content, bad arguments are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

import diffusion_lab as dl
from diffusion_lab import export as dl_export
from diffusion_lab.export import bpe as export_bpe

TEXT = "O Romeo, Romeo! wherefore art thou Romeo?\nDeny thy father and refuse thy name.\n"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """An untrained xs model (32 positions) over a character tokenizer, exported once."""
    cache = tmp_path_factory.mktemp("export-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("DIFFUSION_LAB_CACHE", str(cache))
    tok = dl.CharTokenizer.from_texts([TEXT])
    torch.manual_seed(0)
    model = dl.tiny_mlm(tok, size="xs", max_length=32).eval()
    files = dl_export.export_model(model, tok, "tiny", dl.profile("smoke"))
    yield model, tok, files
    mp.undo()


def test_graph_matches_the_torch_model(tiny):
    import onnxruntime as ort

    model, tok, files = tiny
    session = ort.InferenceSession(str(files["onnx"]), providers=["CPUExecutionProvider"])
    x = torch.randint(5, len(tok), (3, 20))  # batch and length differ from the traced example
    x[:, 0] = tok.cls_token_id
    x[:, 5:12] = tok.mask_token_id
    got = session.run(None, {"input_ids": x.numpy()})[0]
    with torch.no_grad():
        logits = model(input_ids=x).logits
    banned = dl.denoiser.banned_token_ids(tok)  # the one denoiser's set
    want = logits.masked_fill(torch.isin(torch.arange(len(tok)), torch.tensor(banned)),
                              float("-inf")).log_softmax(-1).numpy()
    assert got.shape == (3, 20, len(tok))
    assert np.isneginf(got[..., banned]).all()  # [MASK], the anchor, [SEP] never proposed
    finite = np.isfinite(want)
    assert (np.isfinite(got) == finite).all()
    assert np.abs(got[finite] - want[finite]).max() < 1e-4  # measured ~1e-6
    assert np.allclose(np.exp(got).sum(-1), 1.0, atol=1e-4)  # log-probabilities
    assert files["bytes"]["onnx"] <= dl_export.MAX_BYTES


def test_json_has_what_the_sampler_needs(tiny):
    model, tok, files = tiny
    meta = json.loads(files["json"].read_text())
    assert meta["split"] == "char" and meta["join"] == ""
    assert meta["vocab"][tok.mask_token_id] == "[MASK]"
    assert meta["vocab"][tok.convert_tokens_to_ids("O")] == "O" and "\n" in meta["vocab"]
    assert meta["special"]["mask"] == tok.mask_token_id
    assert meta["special"]["cls"] == tok.cls_token_id
    assert meta["special"]["pad"] == tok.pad_token_id and meta["special"]["eos"] == tok.eos_token_id
    assert meta["banned"] == dl.denoiser.banned_token_ids(tok)
    assert meta["max_length"] == 31  # 32 positions, one for the [CLS] anchor
    assert meta["palette"] == list(dl.viz.slots.palette()) and meta["bins"] == 10
    assert meta["inputs"] == {"ids": "input_ids", "logp": "logp"}


def test_export_is_cached_by_content(tiny):
    model, tok, files = tiny
    stamp = files["onnx"].stat().st_mtime_ns
    again = dl_export.export_model(model, tok, "tiny", dl.profile("smoke"))
    assert again["onnx"] == files["onnx"] and files["onnx"].stat().st_mtime_ns == stamp
    changed = dl.tiny_mlm(tok, size="xs", max_length=32)
    assert dl_export.weights_key(changed, tok) != dl_export.weights_key(model, tok)


def test_word_level_tokenizer_is_described():
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[EOS]", "the", "cat", "sat", "on",
             "mat"]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]",
                                  cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                  eos_token="[EOS]")
    spec = dl_export.tokenizer_spec(tok)
    assert spec["split"] == "whitespace" and spec["join"] == " "
    assert spec["special"]["eos"] == 5 and 5 not in spec["banned"]  # [EOS] can be generated
    assert spec["vocab"][6:] == words[6:]


def test_byte_level_bpe_is_described():
    tok = dl.train_tokenizer([TEXT * 20], vocab_size=300)
    spec = dl_export.tokenizer_spec(tok)
    assert spec["split"] == "bpe" and spec["join"] == "" and spec["merges"]
    assert spec["pattern"] == export_bpe.GPT2_PATTERN
    vocab = tok.get_vocab()
    for text in [TEXT, "  Romeo's   café\n\n", "", "what is 3+4?no"]:
        assert export_bpe.encode(spec, vocab, text) == tok(text, add_special_tokens=False)[
            "input_ids"], text


def _bpe_with(**changes) -> PreTrainedTokenizerFast:
    tok = dl.train_tokenizer([TEXT * 20], vocab_size=300)
    backend = tok.backend_tokenizer
    if "prefix" in changes:
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    if "normalizer" in changes:
        backend.normalizer = normalizers.Lowercase()
    return PreTrainedTokenizerFast(tokenizer_object=backend, mask_token="[MASK]",
                                   cls_token="[CLS]", pad_token="[PAD]")


@pytest.mark.parametrize("change, message", [("prefix", "add_prefix_space"),
                                             ("normalizer", "a normalizer")])
def test_bpe_the_sampler_cannot_follow_is_refused(change, message):
    with pytest.raises(ValueError, match=message):
        dl_export.tokenizer_spec(_bpe_with(**{change: True}))


def test_export_of_the_qa_model(monkeypatch, tmp_path):
    """``export("qa")``: the chapter's model within budget, its JSON has the panel's settings
    (an untrained smoke-sized stand-in for the zoo model: the format, not the weights)."""
    monkeypatch.setenv("DIFFUSION_LAB_CACHE", str(tmp_path))
    tok = dl.course.recipes.tokenizer(dl.course.recipes.plan("qa-diffusion", dl.profile("smoke")))
    torch.manual_seed(0)
    model = dl.tiny_mlm(tok, size="xs", max_length=20).eval()
    monkeypatch.setattr(dl.zoo, "pretrained_qa", lambda kind, prof, **kw: (model, tok, {}))
    files = dl_export.export("qa", dl.profile("cpu"))
    meta = json.loads(files["json"].read_text())
    assert files["bytes"]["onnx"] <= dl_export.MAX_BYTES and meta["split"] == "bpe"
    assert meta["max_length"] == 19 and meta["defaults"]["strategy"] == "reread_remask"
    assert meta["defaults"]["temperature"] == 0 and meta["defaults"]["profile"] == "cpu"
    assert meta["qa"]["forced"] == {"true": "no", "false": "yes"}
    assert all(dl.qa.family_of(q) for q in meta["qa"]["examples"])
    assert set(meta["qa"]["families"]) == set(dl.qa.FAMILIES)
    with pytest.raises(TypeError, match="extra must be a dict"):
        dl_export.export_model(model, tok, "qa", extra=["no"])


def test_live_models_ships_the_qa_model(monkeypatch, tmp_path):
    """The book's extension finds a data-model="qa" panel and exports it with the QA scripts."""
    import sys
    from pathlib import Path
    from types import SimpleNamespace

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book" / "_ext"))
    import live_models

    page = tmp_path / "chapters" / "answering.html"
    page.parent.mkdir(parents=True)
    page.write_text('<div class="dl-live" data-model="qa" data-kind="qa" hidden></div>')
    assert live_models.models_in(tmp_path) == {"qa": ["chapters/answering.html"]}
    ort = tmp_path / "_static" / "vendor" / "onnxruntime-web"
    ort.mkdir(parents=True)
    for f in ("ort.wasm.min.js", *live_models.ORT_FILES):
        (ort / f).write_bytes(b"x")
    onnx, js = tmp_path / "qa.onnx", tmp_path / "qa.json"
    onnx.write_bytes(b"onnx")
    js.write_text("{}")
    asked = []
    monkeypatch.setattr(dl_export, "export", lambda name: asked.append(name) or {
        "onnx": onnx, "json": js, "bytes": {"onnx": 4, "json": 2}})
    app = SimpleNamespace(outdir=str(tmp_path), builder=SimpleNamespace(format="html"))
    live_models.publish_models(app, None)
    assert asked == ["qa"]
    assert (tmp_path / "_static" / "live" / "models" / "qa.onnx").is_file()
    added = []
    live_models.add_panel_assets(SimpleNamespace(add_css_file=added.append,
                                                 add_js_file=added.append), "p", None,
                                 {"body": page.read_text()}, None)
    assert added[1:] == [f"live/{s}" for s in live_models.LIVE_SCRIPTS]
    assert "live/bpe.js" in added and "live/qa.js" in added


def test_bad_arguments(tiny, tmp_path):
    model, tok, _ = tiny
    with pytest.raises(ValueError, match="dtype must be one of"):
        dl_export.export_onnx(model, tok, tmp_path / "x.onnx", dtype="int8")
    with pytest.raises(ValueError, match="name must be"):
        dl_export.export_model(model, tok, "../up", dl.profile("smoke"))
    ar = dl.tiny_ar(tok, size="xs", max_length=32)
    with pytest.raises(ValueError, match="masked LM"):
        dl_export.export_onnx(ar, tok, tmp_path / "ar.onnx")


def test_the_live_options_are_the_registry_defaults():
    """The page's strategy options come from ``dl.STRATEGIES[name].options``, not a copy."""
    options = dl_export.onnx.live_options()
    assert set(options) == set(dl_export.onnx.LIVE_OPTIONS)
    for name in dl_export.onnx.LIVE_STRATEGIES:
        for key, value in dl.STRATEGIES[name].options.items():
            assert options.get(key, value) == value, (name, key)
