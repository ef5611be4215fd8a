"""`diffusion_lab.export`: the ONNX graph equals the torch model, the JSON describes the tokenizer
the JavaScript sampler reproduces, exports are cached by content, bad arguments are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

import diffusion_lab as dl
from diffusion_lab import export as dl_export

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


def test_byte_level_bpe_is_refused():
    tok = dl.train_tokenizer([TEXT * 20], vocab_size=300)
    with pytest.raises(ValueError, match="neither one token per character"):
        dl_export.tokenizer_spec(tok)


def test_bad_arguments(tiny, tmp_path):
    model, tok, _ = tiny
    with pytest.raises(ValueError, match="dtype must be one of"):
        dl_export.export_onnx(model, tok, tmp_path / "x.onnx", dtype="int8")
    with pytest.raises(ValueError, match="name must be"):
        dl_export.export_model(model, tok, "../up", dl.profile("smoke"))
    ar = dl.tiny_ar(tok, size="xs", max_length=32)
    with pytest.raises(ValueError, match="masked LM"):
        dl_export.export_onnx(ar, tok, tmp_path / "ar.onnx")
