"""Questions with exact answers: a synthetic instruction corpus for conditional generation.

Three families, each a generator of ``(question, answer)`` pairs and an exact ``check``:

* `Claims`  "is 3+4=7?" -> "yes, 3+4=7."  /  "is 3+4=8?" -> "no, 3+4=7."   (the seed's form)
* `Sums`    "what is 3+4?" -> "7."                                        (a short answer)
* `Counts`  "count 3 to 6?" -> "3 4 5 6."                                 (a long, variable one)

The answers have different lengths, so a model trained on them (``objective="sft"``) has to
learn where an answer ends ([EOS]).  ``check(question, answer)`` is True when the answer is the
right one, written in the family's form; a question the family cannot parse is a ValueError.
Everything is seeded and offline: ``pairs(n, seed)`` gives the same list on every machine.
"""

from __future__ import annotations

import random
import re

from ..settings import check_int

_CLAIM = re.compile(r"is (\d+)\+(\d+)=(\d+)\?")
_SUM = re.compile(r"what is (\d+)\+(\d+)\?")
_COUNT = re.compile(r"count (\d+) to (\d+)\?")


def _parse(pattern: re.Pattern, question, family: str) -> tuple[int, ...]:
    if not isinstance(question, str):
        raise TypeError(f"question must be a str, got {type(question).__name__}")
    match = pattern.fullmatch(question)
    if match is None:
        raise ValueError(f"question {question!r} is not a {family} question (expected the form "
                         f"{pattern.pattern!r})")
    return tuple(int(g) for g in match.groups())


def _answer_str(answer) -> str:
    if not isinstance(answer, str):
        raise TypeError(f"answer must be a str, got {type(answer).__name__}")
    return answer


class Family:
    """A family of questions: ``pair(rng)`` draws one, ``answer(q)`` solves one, ``check``."""

    name = "family"
    pattern: re.Pattern

    def pair(self, rng: random.Random) -> tuple[str, str]:
        raise NotImplementedError

    def answer(self, question: str) -> str:
        raise NotImplementedError

    def check(self, question: str, answer: str) -> bool:
        """Is ``answer`` exactly the right answer to ``question``?"""
        return _answer_str(answer) == self.answer(question)

    def owns(self, question: str) -> bool:
        return isinstance(question, str) and self.pattern.fullmatch(question) is not None


class Claims(Family):
    """Yes/no claims about single-digit sums; half true, half false (off by 1..3)."""

    name, pattern = "claims", _CLAIM

    def pair(self, rng):
        a, b = rng.randrange(10), rng.randrange(10)
        c = a + b
        if rng.random() < 0.5:
            c = max(0, c + rng.choice([-3, -2, -1, 1, 2, 3]))
            c = c if c != a + b else a + b + 1
        question = f"is {a}+{b}={c}?"
        return question, self.answer(question)

    def answer(self, question):
        a, b, c = _parse(self.pattern, question, self.name)
        return f"{'yes' if a + b == c else 'no'}, {a}+{b}={a + b}."

    @staticmethod
    def is_true(question: str) -> bool:
        a, b, c = _parse(_CLAIM, question, "claims")
        return a + b == c

    @staticmethod
    def verdict(answer: str) -> tuple[str | None, bool | None]:
        """(the answer's first word if it is "yes" or "no", whether its equation is right)."""
        word = answer.split(",")[0].strip()
        eq = re.fullmatch(r"(?:yes|no), (\d+)\+(\d+)=(\d+)\.", answer.strip())
        right = None if eq is None else int(eq[1]) + int(eq[2]) == int(eq[3])
        return (word if word in ("yes", "no") else None), right


class Sums(Family):
    """The sum of two digits, answered with the number alone."""

    name, pattern = "sums", _SUM

    def pair(self, rng):
        question = f"what is {rng.randrange(10)}+{rng.randrange(10)}?"
        return question, self.answer(question)

    def answer(self, question):
        a, b = _parse(self.pattern, question, self.name)
        return f"{a + b}."


class Counts(Family):
    """Count from a to b (2 to 6 numbers): the longest, most variable answers."""

    name, pattern = "counts", _COUNT

    def pair(self, rng):
        a = rng.randrange(10)
        question = f"count {a} to {a + rng.randrange(1, 6)}?"
        return question, self.answer(question)

    def answer(self, question):
        a, b = _parse(self.pattern, question, self.name)
        if not a < b:
            raise ValueError(f"question {question!r} counts from {a} to {b}: needs {a} < {b}")
        return " ".join(str(i) for i in range(a, b + 1)) + "."


FAMILIES: dict[str, Family] = {f.name: f for f in (Claims(), Sums(), Counts())}


def family_of(question: str) -> Family:
    """The family whose form ``question`` has; a ValueError naming the forms otherwise."""
    for family in FAMILIES.values():
        if family.owns(question):
            return family
    raise ValueError(f"question {question!r} belongs to no family; the forms are "
                     f"{[f.pattern.pattern for f in FAMILIES.values()]}")


def check(question: str, answer: str) -> bool:
    """Is ``answer`` the right answer to ``question`` (of any family)?"""
    return family_of(question).check(question, answer)


def pairs(n: int, seed: int = 0, families=tuple(FAMILIES)) -> list[tuple[str, str]]:
    """``n`` seeded ``(question, answer)`` pairs, families drawn in turn."""
    check_int(n, "n")
    unknown = [f for f in families if f not in FAMILIES]
    if not families or unknown:
        raise ValueError(f"families must be names from {list(FAMILIES)}, got {families!r}")
    rng = random.Random(seed)
    return [FAMILIES[families[i % len(families)]].pair(rng) for i in range(n)]


def ask(model, tok, questions, *, length: int, forced: str = "", revise_forced: bool = False,
        **settings) -> tuple[list[str], list]:
    """Answer ``questions`` with ``dl.generate``: ``(answers, trajectories)``.

    Questions are batched by token count (the AR sampler decodes a batch in lock step, and a
    forced token sits at one text position per batch).  ``length`` counts question + answer
    tokens (as in ``generate``); the answer is the text after the question, cut at [EOS].
    ``forced``: text the answer must start with (e.g. "no"), appended to the prompt; with
    ``revise_forced=True`` its tokens are ``revisable`` (a revising strategy may change them).
    ``settings`` go to ``dl.generate`` (strategy, steps, threshold, seed, ...)."""
    from ..sampling import generate

    if isinstance(questions, str) or not isinstance(questions, (list, tuple)) or not questions:
        raise TypeError(f"questions must be a non-empty list of str, got {questions!r:.60}")
    if not isinstance(forced, str):
        raise TypeError(f"forced must be a str, got {type(forced).__name__}")
    check_int(length, "length")
    groups: dict[int, list[int]] = {}
    for i, q in enumerate(questions):
        if not isinstance(q, str):
            raise TypeError(f"questions[{i}] must be a str, got {type(q).__name__}")
        n = len(tok(q, add_special_tokens=False)["input_ids"])
        n_forced = len(tok(q + forced, add_special_tokens=False)["input_ids"]) - n
        if length - n - n_forced <= 0:
            raise ValueError(f"the response length (length={length!r} minus the {n + n_forced} "
                             f"tokens of questions[{i}] {q + forced!r}) must be > 0")
        groups.setdefault((n, n_forced), []).append(i)
    answers, trajectories = [""] * len(questions), []
    for (n, n_forced), rows in sorted(groups.items()):
        revisable = list(range(n, n + n_forced)) if revise_forced and n_forced else None
        traj = generate(model, tok, [questions[i] + forced for i in rows], length=length,
                        revisable=revisable, **settings)
        for i, text in zip(rows, traj.texts, strict=True):
            answers[i] = text[len(questions[i]):]
        trajectories.append(traj)
    return answers, trajectories
