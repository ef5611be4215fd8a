"""Checkable synthetic tasks: measure a sampler by accuracy instead of by eye.

Each `Task` is a tiny formal language with an exact scorer. Every example has exactly
``task.length`` characters drawn from ``task.alphabet``, so a character-level model with
``seq_len = task.length + 1`` (the [CLS] anchor) sees the whole problem at once:

* `Addition`   "07+45=052"            prompt "07+45="            (a prefix: left-to-right is easy)
* `Sorting`    "351924>123459"        prompt "351924>"           (prefix; the answer is a set)
* `MiniSudoku` "1234/3412/2143/4321"  prompt with cells masked   (infill: no natural order)

``prompts(n, seed)[i]`` is the question whose solution is ``sample(n, seed)[i]``; ``check`` takes
the *full* text (prompt included) and says whether it is correct and agrees with the prompt.
"""

from __future__ import annotations

import functools
import itertools
import random
import re

from ..settings import check_int

MASK = "[MASK]"


def _matches_template(text: str, prompt: str, mask_token: str) -> bool:
    """Does ``text`` start with ``prompt``, each ``mask_token`` standing for any one character?"""
    i = j = 0
    while i < len(prompt):
        if j >= len(text):
            return False
        if prompt.startswith(mask_token, i):
            i += len(mask_token)
        elif prompt[i] == text[j]:
            i += 1
        else:
            return False
        j += 1
    return True


class Task:
    """A family of fixed-length puzzles with exact answers.

    Subclasses set ``name``, ``alphabet`` and ``length`` and implement ``_example`` (one solved
    example from an RNG), ``_question`` (the prompt for a solved example) and ``_is_solved``.
    """

    name: str = "task"
    alphabet: str = ""
    length: int = 0

    def _example(self, rng: random.Random) -> str:
        raise NotImplementedError

    def _question(self, example: str, rng: random.Random, mask_token: str) -> str:
        raise NotImplementedError

    def _is_solved(self, text: str) -> bool:
        raise NotImplementedError

    def sample(self, n: int, seed: int = 0) -> list[str]:
        """``n`` solved examples, deterministic given ``seed``."""
        check_int(n, "n", 1)
        rng = random.Random(seed)
        return [self._example(rng) for _ in range(n)]

    def prompts(self, n: int, seed: int = 0, mask_token: str = MASK) -> list[str]:
        """Questions for ``sample(n, seed)``: a prefix, or a template with ``mask_token`` holes."""
        if not isinstance(mask_token, str) or not mask_token:
            raise ValueError(f"mask_token must be a non-empty str; got {mask_token!r}")
        if set(mask_token) & set(self.alphabet):
            raise ValueError(
                f"mask_token={mask_token!r} shares characters with the alphabet "
                f"{self.alphabet!r}; choose a token made of other characters"
            )
        rng = random.Random(f"{seed}:prompts")  # separate stream: sample(n, seed) is unchanged
        return [self._question(ex, rng, mask_token) for ex in self.sample(n, seed)]

    def check(self, text: str, prompt: str | None = None, *, mask_token: str = MASK) -> bool:
        """Is ``text`` (the full sequence, prompt included) a correct answer? Never raises on it.

        With a ``prompt``, the text must also agree with it (same prefix / same given cells).
        """
        if prompt is not None and not isinstance(prompt, str):
            raise TypeError(f"prompt must be a str or None; got {type(prompt).__name__}")
        if not isinstance(text, str) or len(text) != self.length:
            return False
        if not set(text) <= set(self.alphabet) or not self._is_solved(text):
            return False
        return prompt is None or _matches_template(text, prompt, mask_token)

    def score(
        self, texts: list[str], prompts: list[str] | None = None, *, mask_token: str = MASK
    ) -> float:
        """Fraction of ``texts`` that `check` accepts (against ``prompts[i]`` when given)."""
        if isinstance(texts, str) or not isinstance(texts, (list, tuple)) or not texts:
            raise ValueError(f"texts must be a non-empty list of strings; got {texts!r:.80}")
        if prompts is None:
            pairs = [(t, None) for t in texts]
        else:
            if isinstance(prompts, str) or len(prompts) != len(texts):
                raise ValueError(
                    f"prompts must be a list with one prompt per text ({len(texts)}); "
                    f"got {prompts!r:.80}"
                )
            pairs = list(zip(texts, prompts, strict=True))
        return sum(self.check(t, p, mask_token=mask_token) for t, p in pairs) / len(pairs)

    def __repr__(self) -> str:
        public = {k: v for k, v in vars(self).items() if not k.startswith("_") and k != "length"}
        args = ", ".join(f"{k}={v!r}" for k, v in public.items())
        return f"{type(self).__name__}({args})"


class Addition(Task):
    """Sums "a+b=c", a and b zero-padded to ``digits`` and c to ``digits + 1``: "07+45=052"."""

    name = "addition"
    alphabet = "0123456789+="

    def __init__(self, digits: int = 2) -> None:
        check_int(digits, "digits", 1)
        self.digits = digits
        self.length = 3 * digits + 3
        d = f"[0-9]{{{digits}}}"
        self._pattern = re.compile(rf"({d})\+({d})=([0-9]{{{digits + 1}}})")

    def _example(self, rng: random.Random) -> str:
        a, b = rng.randrange(10**self.digits), rng.randrange(10**self.digits)
        d = self.digits
        return f"{a:0{d}d}+{b:0{d}d}={a + b:0{d + 1}d}"

    def _question(self, example: str, rng: random.Random, mask_token: str) -> str:
        return example[: example.index("=") + 1]

    def _is_solved(self, text: str) -> bool:
        match = self._pattern.fullmatch(text)
        return match is not None and int(match[1]) + int(match[2]) == int(match[3])


class Sorting(Task):
    """A random digit string, ">" and its sorted version: "351924>123459".

    The argument ``length`` is how many digits are sorted; the attribute ``length`` (as for every
    task) is the total number of characters, ``2 * n_digits + 1``.
    """

    name = "sorting"
    alphabet = "0123456789>"

    def __init__(self, length: int = 6) -> None:
        check_int(length, "length", 1)
        self.n_digits = length
        self.length = 2 * length + 1
        self._pattern = re.compile(rf"([0-9]{{{length}}})>([0-9]{{{length}}})")

    def __repr__(self) -> str:
        return f"Sorting(length={self.n_digits})"

    def _example(self, rng: random.Random) -> str:
        digits = "".join(rng.choice("0123456789") for _ in range(self.n_digits))
        return f"{digits}>{''.join(sorted(digits))}"

    def _question(self, example: str, rng: random.Random, mask_token: str) -> str:
        return example[: example.index(">") + 1]

    def _is_solved(self, text: str) -> bool:
        match = self._pattern.fullmatch(text)
        return match is not None and "".join(sorted(match[1])) == match[2]


@functools.lru_cache(maxsize=1)
def _all_sudoku_grids() -> tuple[str, ...]:
    """Every valid 4x4 sudoku, by backtracking over rows that are permutations of 1..4."""
    perms = ["".join(p) for p in itertools.permutations("1234")]
    grids: list[str] = []

    def extend(rows: list[str]) -> None:
        if len(rows) == 4:
            grids.append("/".join(rows))
            return
        for row in perms:
            if any(row[c] == r[c] for r in rows for c in range(4)):
                continue  # column clash
            if len(rows) % 2 == 1 and any(
                set(row[b : b + 2]) & set(rows[-1][b : b + 2]) for b in (0, 2)
            ):
                continue  # 2x2 box clash with the row above in the same band
            extend([*rows, row])

    extend([])
    return tuple(grids)


class MiniSudoku(Task):
    """A 4x4 sudoku as rows joined by "/": "1234/3412/2143/4321" (19 characters).

    Rows, columns and the four 2x2 boxes are each a permutation of 1..4. Prompts are solved grids
    with ``holes`` cells replaced by the mask token; any valid grid that keeps the given cells is
    accepted (a puzzle may have several solutions).
    """

    name = "sudoku"
    alphabet = "1234/"
    length = 19

    def __init__(self, holes: int = 6) -> None:
        check_int(holes, "holes", 1, 16)
        self.holes = holes

    @staticmethod
    def all_grids() -> tuple[str, ...]:
        """All 288 valid 4x4 grids, in a fixed order."""
        return _all_sudoku_grids()

    def _example(self, rng: random.Random) -> str:
        return rng.choice(_all_sudoku_grids())

    def _question(self, example: str, rng: random.Random, mask_token: str) -> str:
        hidden = {5 * (k // 4) + k % 4 for k in rng.sample(range(16), self.holes)}
        return "".join(mask_token if i in hidden else ch for i, ch in enumerate(example))

    def _is_solved(self, text: str) -> bool:
        rows = text.split("/")
        if len(rows) != 4 or any(len(r) != 4 or set(r) != set("1234") for r in rows):
            return False
        cols = ["".join(r[c] for r in rows) for c in range(4)]
        boxes = [rows[r][c : c + 2] + rows[r + 1][c : c + 2] for r in (0, 2) for c in (0, 2)]
        return all(set(group) == set("1234") for group in cols + boxes)


TASKS: dict[str, type[Task]] = {"addition": Addition, "sorting": Sorting, "sudoku": MiniSudoku}


def get_task(name: str, **kwargs: int) -> Task:
    """Build the task registered as ``name`` in `TASKS`, passing ``kwargs`` to its constructor."""
    if not isinstance(name, str) or name not in TASKS:
        raise ValueError(f"unknown task name={name!r}; valid names: {', '.join(TASKS)}")
    return TASKS[name](**kwargs)
