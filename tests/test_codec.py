"""Values as data across the sandbox wall (diffusion_lab/classroom/codec.py): what a kernel sends
comes back equal, nothing it sends can make the grader build a model, run a function or follow a
link, and sizes are capped."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

from diffusion_lab.classroom import codec
from diffusion_lab.registry import linear_time_grid
from diffusion_lab.trajectory import Frame, Trajectory


def _roundtrip(value, tmp_path, **decoder):
    enc = codec.Encoder(handles=lambda obj: 7)
    codec.write(tmp_path, "m", enc(value), enc.tensors)
    tree, tensors = codec.read(tmp_path, "m")
    return codec.Decoder(tensors, **decoder)(tree)


def test_data_comes_back_equal(tmp_path):
    t = torch.arange(6, dtype=torch.float64).reshape(2, 3)
    value = {("ancestral", 16): [1, 2.5, None, True, "x", ...], 3: (float("nan"), -math.inf),
             "t": t, "mask": t > 2, "ids": torch.tensor([1, 2]), "np": np.arange(3),
             "scalar": np.float32(0.5)}
    back = _roundtrip(value, tmp_path)
    assert back[("ancestral", 16)] == [1, 2.5, None, True, "x", ...]
    assert math.isnan(back[3][0]) and back[3][1] == -math.inf
    assert torch.equal(back["t"], t) and back["t"].dtype == torch.float64
    assert torch.equal(back["mask"], t > 2) and torch.equal(back["ids"], torch.tensor([1, 2]))
    assert isinstance(back["np"], np.ndarray) and back["np"].tolist() == [0, 1, 2]
    assert back["scalar"] == 0.5


def test_library_records_and_functions(tmp_path):
    frame = Frame(1, torch.zeros(1, 3, dtype=torch.long), torch.ones(1, 3, dtype=torch.bool),
                  torch.zeros(1, 3), torch.zeros(1, 3, dtype=torch.bool),
                  torch.zeros(1, 3, dtype=torch.bool))
    traj = Trajectory(["ab"], [frame], frame, torch.zeros(1, 3, dtype=torch.bool), None, "x", 1)
    back = _roundtrip({"traj": traj, "f": linear_time_grid}, tmp_path)
    assert isinstance(back["traj"], Trajectory) and back["traj"].texts == ["ab"]
    assert torch.equal(back["traj"].frames[0].mask, frame.mask)
    assert back["f"] is linear_time_grid  # the library's own function, by name


def test_a_function_of_the_sender_is_a_handle_never_code(tmp_path):
    def mine(x):
        return x

    enc = codec.Encoder(handles=lambda obj: 3)
    assert enc(mine) == {"$": "remote", "id": 3, "callable": True, "type": "function",
                         "repr": repr(mine)[:80]}
    with pytest.raises(codec.CodecError, match="cannot be sent"):
        codec.Encoder()(mine)
    seen = []
    back = _roundtrip([mine], tmp_path, remote=lambda node: seen.append(node) or "proxy")
    assert back == ["proxy"] and seen[0]["id"] == 7


def test_untrusted_messages_build_data_only(tmp_path):
    dec = codec.Decoder({})
    for node in ({"$": "model", "dir": "m", "class": "BertForMaskedLM"},
                 {"$": "tokenizer", "dir": "t", "class": "x"},
                 {"$": "object", "type": "diffusion_lab.worlds.grammar:Grammar", "kwargs": {}},
                 {"$": "dataclass", "type": "subprocess:Popen", "fields": {}},
                 {"$": "remote", "id": 1}):
        with pytest.raises(codec.CodecError):
            dec(node)
    for name in ("os:system", "diffusion_lab.classroom.codec:os.system",
                 "diffusion_lab.registry:torch.load", "diffusion_lab.grading:grade"):
        with pytest.raises(codec.CodecError):
            dec({"$": "libfunc", "name": name})
    # a student's dict that looks like a tag stays a dict
    assert _roundtrip({"$": "model", "dir": "x"}, tmp_path) == {"$": "model", "dir": "x"}


def test_links_and_sizes_are_refused(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("teacher")
    os.symlink(secret, tmp_path / "m.json")
    with pytest.raises(codec.CodecError, match="cannot open"):
        codec.read(tmp_path, "m")
    (tmp_path / "big.json").write_bytes(b"0" * 100)
    with pytest.raises(codec.CodecError, match="over 10"):
        codec.read_file(tmp_path / "big.json", 10)
    (tmp_path / "bad.json").write_text("[[[")
    with pytest.raises(codec.CodecError, match="not JSON"):
        codec.read(tmp_path, "bad")


def test_a_grammar_and_its_oracle_are_rebuilt_from_data(tmp_path):
    import diffusion_lab as dl
    from diffusion_lab.worlds.grammar_oracle import GrammarOracleForMaskedLM

    lang = dl.worlds.grammar.book_language()
    enc = codec.Encoder(tmp_path, full=True)
    tree = enc({"lang": lang, "oracle": GrammarOracleForMaskedLM(lang)})
    back = codec.Decoder(enc.tensors, tmp_path, trusted=True)(tree)
    assert back["lang"].words == lang.words and back["lang"].templates == lang.templates
    assert torch.allclose(back["lang"].template_prob, lang.template_prob, rtol=1e-12)
    texts = lang.sample(4, seed=0)
    assert torch.allclose(back["lang"].log_prob(texts), lang.log_prob(texts), rtol=1e-12)
    assert isinstance(back["oracle"], GrammarOracleForMaskedLM)


def test_trusted_models_and_tokenizers(tmp_path):
    import diffusion_lab as dl

    tok = dl.CharTokenizer.from_texts(["abc"])
    model = dl.tiny_mlm(tok, size="xs", max_length=16).eval()
    enc = codec.Encoder(tmp_path, full=True)
    tree = enc({"model": model, "tok": tok})
    back = codec.Decoder(enc.tensors, tmp_path, trusted=True)(tree)
    ids = torch.tensor([[2, 5, 4, 6]])
    with torch.no_grad():
        assert torch.allclose(back["model"](input_ids=ids).logits, model(input_ids=ids).logits)
    assert back["tok"]("abc")["input_ids"] == tok("abc")["input_ids"]
