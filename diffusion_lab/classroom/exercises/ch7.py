"""Checks for chapter 7 (a pretrained BERT as a generator; the race against GPT)."""

from __future__ import annotations

from . import checker, number, require


@checker("ch7-ex2")
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


@checker("ch7-ex3")
def check_checkpoint_step(step, total_steps: int, every: int) -> str:
    """The step of the newest checkpoint of a run of ``total_steps`` saved every ``every``."""
    got = number(step, "step")
    want = total_steps // every * every
    require(got <= total_steps, f"step {int(got)} is beyond the run's {total_steps} steps")
    require(got == want, "that is not the newest checkpoint: sort the step-* folders and read "
                         "trainer.json of the last one")
    return f"step {int(got)}"
