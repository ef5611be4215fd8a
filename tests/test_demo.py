"""``python -m diffusion_lab demo`` (``diffusion_lab/course/demo.py``): what a newcomer sees first.

The grammar world's printed sentences are re-checked here with the grammar's own validity check
and exact log-probability, parsed from the text the demo printed; the smoke profile runs every
world end to end in seconds (its models are seconds-trained: the lines are checked for being
right, not for being grammatical).  Where the book's cpu-profile grammar models are in the cache
(CI builds the book before the tests), the cpu demo is run too and must write grammatical
sentences.
"""

from __future__ import annotations

import ast
import io
import os
import re
import subprocess
import sys

import pytest
import torch

import diffusion_lab as dl
from diffusion_lab.cli import main
from diffusion_lab.course import demo
from diffusion_lab.worlds.grammar import book_language

SENTENCE = re.compile(r"^  (valid|invalid)\s+(?:log p =\s+(-?[\d.]+)|\((\w+)\))\s+\| (.*)$")
ROW = re.compile(r"^(MDLM ancestral|MDLM threshold|AR)\s+([\d.]+)\s+(\d+)/(\d+) \(\d+%\)\s+"
                 r"(\d+)%\s+(\S+)$")


def sentence_lines(text: str) -> list[tuple[str, float | None, str | None, str]]:
    """(mark, log p or None, error kind or None, sentence) of every printed sentence line."""
    out = []
    for line in text.splitlines():
        m = SENTENCE.match(line)
        if m:
            out.append((m[1], None if m[2] is None else float(m[2]), m[3], m[4]))
    return out


def check_sentences(text: str) -> list[tuple]:
    """Assert that every printed sentence's mark and log p are the grammar's own verdict."""
    lang = book_language()
    lines = sentence_lines(text)
    assert len(lines) == 3 * demo.SHOWN, text  # two MDLM decoders and the AR model
    for mark, log_p, kind, sentence in lines:
        truth = lang.log_prob([sentence])[0].item()  # raises on a word outside the vocabulary
        assert (mark == "valid") == bool(torch.isfinite(torch.tensor(truth))), sentence
        if mark == "valid":
            assert log_p == pytest.approx(truth, abs=0.006), sentence
        else:
            assert kind in ("agreement", "quotes", "end", "other"), sentence
    return lines


def table_rows(text: str) -> dict[str, tuple[float, int, int]]:
    """{decoder: (passes per sentence, valid, n)} from the summary table."""
    rows = {}
    for line in text.splitlines():
        m = ROW.match(line)
        if m:
            rows[m[1]] = (float(m[2]), int(m[3]), int(m[4]))
    return rows


@pytest.fixture(scope="module")
def grammar_smoke() -> tuple[str, dict]:
    out = io.StringIO()
    result = demo.run("grammar", "smoke", out=out)
    return out.getvalue(), result


def test_grammar_demo_prints_what_the_grammar_says(grammar_smoke):
    text, result = grammar_smoke
    check_sentences(text)
    rows = table_rows(text)
    assert set(rows) == {"MDLM ancestral", "MDLM threshold", "AR"}, text
    for r in result["decoders"]:
        passes, valid, n = rows[r["decoder"]]
        assert (valid, n) == (r["valid"], demo.N_SENTENCES)
        assert 1 <= passes <= book_language().max_len
    assert "valid" in text and "log p" in text and "(= -H)" in text


def test_sentence_lines_print_validity_and_exact_log_p():
    """The formatter itself, on true samples (valid) and broken ones (each kind)."""
    lang = book_language()
    texts = lang.sample(3, seed=0) + ["the dogs runs .", "the dog runs", 'the dog says " the cat .']
    out = io.StringIO()
    shown = demo.SHOWN
    try:
        demo.SHOWN = len(texts)
        valid, log_p = demo._sentence_lines(lang, texts, out)
    finally:
        demo.SHOWN = shown
    lines = sentence_lines(out.getvalue())
    assert [m for m, *_ in lines] == ["valid"] * 3 + ["invalid"] * 3
    assert [k for _, _, k, _ in lines[3:]] == ["agreement", "end", "quotes"]
    assert valid.tolist() == [True] * 3 + [False] * 3
    for (_, printed, _, sentence), exact in zip(lines[:3], log_p[:3].tolist(), strict=True):
        assert printed == pytest.approx(exact, abs=0.006)
        assert sentence in texts


def test_ar_stops_at_its_first_eos_and_pays_one_pass_per_token():
    texts = ["the dog runs . [EOS] [EOS] [EOS]", "every cat sleeps . [EOS] dog", "a b c d"]
    cut, passes = demo.ar_stop_at_eos(texts, length=16)
    assert cut == ["the dog runs . [EOS]", "every cat sleeps . [EOS]", "a b c d"]
    assert passes.tolist() == [5, 5, 4]
    assert demo.ar_stop_at_eos(["w " * 16], length=16)[1].tolist() == [16]


def test_unknown_world_fails_clearly(capsys):
    with pytest.raises(SystemExit) as err:
        main(["demo", "--world", "poetry"])
    assert err.value.code == 2
    message = capsys.readouterr().err
    assert "poetry" in message and all(w in message for w in demo.WORLDS), message
    with pytest.raises(ValueError, match=r"world must be one of \['grammar', 'qa', "):
        demo.run("poetry", "smoke")
    with pytest.raises(TypeError, match="seed must be an int"):
        demo.run("grammar", "smoke", seed="0")


def test_cli_demo_runs_as_a_newcomer_types_it(tmp_path, grammar_smoke):
    """The real entry point, in a fresh process: ``python -m diffusion_lab demo`` (smoke)."""
    env = {**os.environ, "DIFFUSION_LAB_PROFILE": "smoke",
           "DIFFUSION_LAB_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "diffusion_lab", "demo"], capture_output=True,
                          text=True, env=env, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "the grammar world (profile smoke" in proc.stdout
    check_sentences(proc.stdout)
    assert sentence_lines(proc.stdout) == sentence_lines(grammar_smoke[0])  # seeded: same lines


def test_qa_demo_answers_and_forces_a_verdict():
    out = io.StringIO()
    result = demo.run("qa", "smoke", out=out)
    text = out.getvalue()
    answered = re.findall(r"^  (right|WRONG)\s+(\d+) pass(?:es|  ) \| (.+?) -> ('.*')$", text,
                          re.M)
    assert len(answered) == len(result["questions"]) == len(dl.qa.FAMILIES) + 3, text
    for mark, _, question, answer in answered:
        assert (mark == "right") == dl.qa.check(question, ast.literal_eval(answer))
    counts = re.findall(r"^  (.+?):\s+(\d+)/(\d+) correct$", text, re.M)
    assert [(c[0], int(c[1])) for c in counts] == list(result["forced_correct"].items()), text
    assert all(int(c[2]) == result["claims"] for c in counts)
    example = re.search(r"claims?(?: it revised)?: (.+?) forced to start with '(yes|no)'\n"
                        r"    low_confidence      -> ('.*')\n"
                        r"    confidence_weighted -> ('.*')$", text, re.M)
    assert example, text
    claim, word, kept, revised = example.groups()
    assert word == ("no" if dl.qa.Claims.is_true(claim) else "yes")  # the wrong verdict
    assert ast.literal_eval(kept).startswith(word)  # a sampler that cannot revise keeps it
    if "the first claim it revised" in text:
        assert dl.qa.check(claim, ast.literal_eval(revised))


def test_shakespeare_demo_writes_after_romeo():
    out = io.StringIO()
    result = demo.run("shakespeare", "smoke", out=out)
    assert [r["strategy"] for r in result["samples"]] == ["ancestral", "low_confidence"]
    assert all(t.startswith("ROMEO:") for r in result["samples"] for t in r["texts"])
    assert "--- ancestral:" in out.getvalue()


BOOK_MODELS_CACHED = all(dl.zoo.is_cached(k, dl.profile("cpu"))
                         for k in ("grammar-mdlm", "grammar-ar"))


@pytest.mark.skipif(not BOOK_MODELS_CACHED,
                    reason="the book's cpu grammar models are not cached (building the book "
                           "trains them)")
def test_cpu_demo_with_the_books_models_writes_grammatical_sentences():
    out = io.StringIO()
    demo.run("grammar", "cpu", out=out)
    text = out.getvalue()
    assert "the book's model" in text
    lines = check_sentences(text)
    rows = table_rows(text)
    # observed (cpu profile, the book's models, seed 0): ancestral 46/100 valid, 15.4 passes;
    # threshold 0.5 94/100, 7.1 passes; AR 95/100, 8.8 passes (stopping at [EOS])
    assert rows["MDLM threshold"][1] >= 80 and rows["AR"][1] >= 80, rows
    assert rows["MDLM ancestral"][1] >= 25, rows
    assert rows["MDLM threshold"][0] < 16 and rows["AR"][0] < 16, rows  # both stop early
    assert sum(m == "valid" for m, *_ in lines) >= 8, text
