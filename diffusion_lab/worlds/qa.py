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

import torch

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


def verdict_events(traj, n_question: int) -> list[dict]:
    """When the verdict was remasked, and when the equation after it was written, per row.

    ``traj``: a trajectory of `ask` on claims of ``n_question`` tokens, the verdict forced and
    revisable (text position ``n_question``).  For each row: ``remasked``, the first step that
    sent the verdict back to [MASK] (None: never); ``sum_written``, the first step at which the
    equation's result (the token after its "=") was revealed; ``equation_written``, the first
    step at which every token of the equation (from its first number to its ".") had been
    revealed (None where the final answer has no "=").  Steps count as in ``traj.frames``."""
    slot = 1 + n_question  # the anchor, then the question
    masks = torch.stack([traj.start.mask] + [f.mask for f in traj.frames])  # (S + 1, B, L)
    shown = (~masks).cumsum(0) > 0  # revealed at this step or before
    first = torch.where(shown.any(0), shown.int().argmax(0), -1)  # (B, L); 0: never masked
    out = []
    for b in range(traj.ids.shape[0]):
        remasked = [f.step for f in traj.frames if f.remasked[b, slot]]
        tokens = traj.tokenizer.convert_ids_to_tokens(traj.ids[b].tolist())
        eq = [i for i in range(slot + 1, len(tokens)) if tokens[i] == "="]
        end = next((i for i in range(slot + 1, len(tokens)) if tokens[i] == "."), None)
        if not eq or end is None or end < eq[0] + 1:
            out.append({"remasked": remasked[0] if remasked else None, "sum_written": None,
                        "equation_written": None})
            continue
        body = range(slot + 2, end + 1)  # after the verdict's comma, up to the "."
        out.append({"remasked": remasked[0] if remasked else None,
                    "sum_written": int(first[b, eq[0] + 1]),
                    "equation_written": max(int(first[b, i]) for i in body)})
    return out


def wrong_verdict(question: str) -> str:
    """The verdict a claim must *not* get: "no" for a true claim, "yes" for a false one."""
    return "no" if Claims.is_true(question) else "yes"


def ask_forced_wrong(model, tok, claims, *, length: int, revise: bool = True,
                     **settings) -> tuple[list[str], list[dict | None]]:
    """Answer ``claims`` with each one's `wrong_verdict` forced: ``(answers, events)``.

    ``revise=True`` makes the forced token revisable (`ask`'s ``revise_forced``); a causal
    model and the committing rules receive it as prompt either way.  ``events[i]``: claim i's
    `verdict_events` (None for a causal model, or when the sampler did not record frames)."""
    from ..models import is_causal_lm

    if isinstance(claims, str) or not isinstance(claims, (list, tuple)) or not claims:
        raise TypeError(f"claims must be a non-empty list of claims, got {claims!r:.60}")
    revise = revise and not is_causal_lm(model)  # an AR model only ever continues a prompt
    groups: dict[tuple[str, int], list[int]] = {}
    for i, q in enumerate(claims):
        n = len(tok(q, add_special_tokens=False)["input_ids"])
        groups.setdefault((wrong_verdict(q), n), []).append(i)
    answers, events = [""] * len(claims), [None] * len(claims)
    for (forced, n), rows in sorted(groups.items()):
        got, trajs = ask(model, tok, [claims[i] for i in rows], length=length, forced=forced,
                         revise_forced=revise, **settings)
        for i, a in zip(rows, got, strict=True):
            answers[i] = a
        if not is_causal_lm(model) and len(trajs) == 1 and trajs[0].frames \
                and settings.get("record", True):
            for i, e in zip(rows, verdict_events(trajs[0], n), strict=True):
                events[i] = e
    return answers, events
