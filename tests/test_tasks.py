"""Synthetic tasks: the exact scorers that samplers are judged by must themselves be right."""

from __future__ import annotations

import pytest

from diffusion_lab.data import CharTokenizer
from diffusion_lab.worlds.tasks import TASKS, Addition, MiniSudoku, Sorting, Task, get_task

ALL_TASKS = [Addition(), Addition(digits=3), Sorting(), Sorting(length=3), MiniSudoku()]
ALL_TASKS += [MiniSudoku(holes=16)]


def corrupt(example: str) -> str:
    """Change the last character (always an answer digit) to another digit of the same kind."""
    digits = "1234" if "/" in example else "0123456789"
    last = example[-1]
    return example[:-1] + digits[(digits.index(last) + 1) % len(digits)]


@pytest.mark.parametrize("task", ALL_TASKS, ids=repr)
def test_samples_are_solved_fixed_length_and_in_alphabet(task: Task):
    examples = task.sample(50, seed=3)
    assert len(examples) == 50
    for ex in examples:
        assert task.check(ex), ex
        assert len(ex) == task.length
        assert set(ex) <= set(task.alphabet)
    assert task.sample(50, seed=3) == examples
    assert task.sample(50, seed=4) != examples


@pytest.mark.parametrize("task", ALL_TASKS, ids=repr)
def test_corrupted_examples_fail(task: Task):
    for ex in task.sample(30, seed=1):
        assert not task.check(corrupt(ex)), corrupt(ex)


@pytest.mark.parametrize("task", ALL_TASKS, ids=repr)
def test_check_never_raises_on_garbage(task: Task):
    ex = task.sample(1)[0]
    garbage = [
        "", ex[:-1], ex + "1", "x" * task.length, "[MASK]" + ex[6:], ex[:-1] + "\u0663",
        " " * task.length, None, 123, ["a"],
    ]  # fmt: skip
    for text in garbage:
        assert task.check(text) is False
        assert task.check(text, prompt=task.prompts(1)[0]) is False


@pytest.mark.parametrize("task", ALL_TASKS, ids=repr)
def test_prompts_pair_with_samples_of_the_same_seed(task: Task):
    examples, prompts = task.sample(20, seed=7), task.prompts(20, seed=7)
    assert len(prompts) == 20
    for ex, prompt in zip(examples, prompts, strict=True):
        assert task.check(ex, prompt)
    assert task.prompts(20, seed=7) == prompts  # deterministic
    mismatched = [task.check(ex, p) for ex, p in zip(examples[1:], prompts[:-1], strict=True)]
    if getattr(task, "holes", 0) < 16:  # an all-holes sudoku prompt constrains nothing
        assert not all(mismatched)  # a prompt constrains the answer


@pytest.mark.parametrize("task", ALL_TASKS, ids=repr)
def test_score_counts_fraction_correct(task: Task):
    examples = task.sample(4, seed=5)
    texts = examples[:3] + [corrupt(examples[3])]
    assert task.score(texts) == 0.75
    assert task.score(examples, task.prompts(4, seed=5)) == 1.0
    with pytest.raises(ValueError, match="prompts"):
        task.score(texts, task.prompts(3))
    with pytest.raises(ValueError, match="texts"):
        task.score([])


def test_char_tokenizer_from_alphabet_covers_every_task():
    for task in ALL_TASKS:
        tok = CharTokenizer.from_texts([task.alphabet])
        for prompt, ex in zip(task.prompts(5), task.sample(5), strict=True):
            assert tok.unk_token_id not in tok(ex)["input_ids"]
            assert tok.decode(tok(ex)["input_ids"]) == ex
            assert tok.unk_token_id not in tok(prompt)["input_ids"]


def test_addition_format_and_arithmetic():
    task = Addition(digits=2)
    assert task.length == 9
    assert task.check("07+45=052") and not task.check("07+45=053")
    assert task.check("99+99=198") and not task.check("7+45=052 ")
    assert task.prompts(3) == [ex[:6] for ex in task.sample(3)]
    assert task.check("07+45=052", prompt="07+45=") and not task.check("07+45=052", "08+44=")


def test_sorting_format():
    task = Sorting(length=6)
    assert task.length == 13 and task.n_digits == 6
    assert task.check("351924>123459") and not task.check("351924>123495")
    assert not task.check("351924>123458")  # sorted, but not the same digits
    assert all(p.endswith(">") and len(p) == 7 for p in task.prompts(5))


def test_sudoku_enumerates_all_288_grids_and_checks_every_rule():
    grids = MiniSudoku.all_grids()
    assert len(grids) == 288 and len(set(grids)) == 288
    task = MiniSudoku()
    assert all(task.check(g) for g in grids)
    assert task.check("1234/3412/2143/4321")
    assert not task.check("1234/3412/2143/4312")  # columns repeat
    assert not task.check("1234/2341/3412/4123")  # a Latin square whose 2x2 boxes repeat
    assert len(set(task.sample(2000))) > 250  # sampling reaches (nearly) every grid


def test_sudoku_prompts_mask_exactly_the_holes():
    task = MiniSudoku(holes=6)
    for prompt, ex in zip(task.prompts(10), task.sample(10), strict=True):
        assert prompt.count("[MASK]") == 6
        assert len(prompt.replace("[MASK]", "?")) == 19
        given = [i for i, ch in enumerate(prompt.replace("[MASK]", "?")) if ch != "?"]
        assert all(prompt.replace("[MASK]", "?")[i] == ex[i] for i in given)
        clash = next(g for g in MiniSudoku.all_grids() if any(g[i] != ex[i] for i in given))
        assert not task.check(clash, prompt)  # a valid grid that ignores a given cell fails


def test_custom_mask_token():
    task = MiniSudoku(holes=4)
    prompt = task.prompts(1, mask_token="_")[0]
    assert prompt.count("_") == 4 and len(prompt) == 19
    assert task.check(task.sample(1)[0], prompt, mask_token="_")
    with pytest.raises(ValueError, match="alphabet"):
        task.prompts(1, mask_token="1")


def test_get_task_and_argument_validation():
    assert set(TASKS) == {"addition", "sorting", "sudoku"}
    assert get_task("sorting", length=4).length == 9
    assert isinstance(get_task("sudoku"), MiniSudoku)
    with pytest.raises(ValueError, match="addition, sorting, sudoku"):
        get_task("chess")
    for bad in [lambda: Addition(0), lambda: MiniSudoku(holes=17), lambda: Sorting(True)]:
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(ValueError, match="n must be"):
        Addition().sample(0)
    with pytest.raises(ValueError, match="n must be"):
        Addition().prompts("3")
