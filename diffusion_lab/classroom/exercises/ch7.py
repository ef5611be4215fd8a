"""Checks for chapter 7 (a pretrained BERT as a generator; the race against GPT)."""

from __future__ import annotations

from . import checker, number, require


def timings_agree(mine: dict, reference: dict, factor: float = 4.0,
                  ratio_factor: float = 2.0) -> str | None:
    """Why the student's ``race`` cannot be the chapter's (None when it can): the same runs with
    the same forward passes; every time within ``factor`` of the grader's own run of the teacher
    edition (a loaded machine is slower), and every run's time relative to GPT-2's within
    ``ratio_factor`` of the grader's (load slows both alike; that ratio is what the exercise
    reads)."""
    if not isinstance(mine, dict) or set(mine) != set(reference):
        return "its runs are not the chapter's"
    for key, ref in reference.items():
        got = mine[key]
        if not isinstance(got, dict) or got.get("passes") != ref["passes"]:
            return f"race[{key!r}]['passes'] differs from the chapter's run"
        seconds = got.get("seconds")
        if not isinstance(seconds, (int, float)) or not (
                ref["seconds"] / factor <= seconds <= ref["seconds"] * factor):
            return (f"race[{key!r}]['seconds'] is not within {factor:g}x of the grader's "
                    f"{ref['seconds']:.3f} s")
        ratio = seconds / mine["AR"]["seconds"] / (ref["seconds"] / reference["AR"]["seconds"])
        if not 1 / ratio_factor <= ratio <= ratio_factor:
            return (f"race[{key!r}] against GPT-2's time is {ratio:.2f}x the grader's ratio "
                    f"(allowed: within {ratio_factor:g}x)")
    return None


@checker("ch7-ex2", answers=("break_even",), own={"race": timings_agree})
def check_break_even(break_even, race: dict, length: int) -> str:
    """The largest number of diffusion forward passes that still beats GPT-2's time for one
    sample, at the cost per pass of the ``length``-step run (recomputed here from ``race``)."""
    got = number(break_even, "break_even")
    require(isinstance(break_even, int), "return an int: a number of forward passes")
    per_pass = race[length]["seconds"] / race[length]["passes"]
    want = int(race["AR"]["seconds"] / per_pass)
    require(abs(got - want) <= 1, "off: how many passes, each costing what one pass of the "
                                  "longest diffusion run cost, fit in GPT-2's time?")
    return f"about {int(got)} passes, against GPT-2's {race['AR']['passes']}"


@checker("ch7-ex3", answers=("step",))
def check_checkpoint_step(step, total_steps: int, every: int) -> str:
    """The step of the newest checkpoint of a run of ``total_steps`` saved every ``every``."""
    got = number(step, "step")
    want = total_steps // every * every
    require(got <= total_steps, f"step {int(got)} is beyond the run's {total_steps} steps")
    require(got == want, "that is not the newest checkpoint: sort the step-* folders and read "
                         "trainer.json of the last one")
    return f"step {int(got)}"
