"""Settings as small frozen dataclasses: what a training run or a sampling run was asked to do.

``dl.train(model, tok, text, steps=500, lr=2e-3)`` and ``dl.generate(model, tok, steps=32)`` keep
their keyword form; behind it each call builds one of these records, so a run can be stored,
compared, hashed (the zoo keys its cache on them) and changed one field at a time::

    base = dl.SampleSettings(length=64, steps=32, strategy="low_confidence", seed=0)
    dl.generate(model, tok, ["ROMEO:"], base.with_(steps=8))

Every field is checked once, here, with a ValueError naming the argument, the value and what is
allowed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

# Old names of objectives and strategies -> their names: old notebooks keep working.
ALIASES = {"variable": "variable_rate", "random": "random_remask"}


def check_int(value, name: str, minimum: int = 1, maximum: int | None = None, *,
              allow_none: bool = False, note: str = "") -> None:
    """The library's one integer check: ``value`` must be an int (not a bool) in
    ``minimum..maximum`` (or None where ``allow_none``); else a ValueError naming ``name``, the
    value and what is allowed (``note`` says why, e.g. what a minimum is made of)."""
    if allow_none and value is None:
        return
    if (isinstance(value, bool) or not isinstance(value, int) or value < minimum
            or (maximum is not None and value > maximum)):
        allowed = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"
        raise ValueError(f"{name} must be an int {allowed}{' or None' if allow_none else ''}"
                         f"{note}; got {value!r}")


def split_known(cls, kwargs: Mapping[str, Any]) -> tuple[dict, dict]:
    """(the items of ``kwargs`` that are fields of ``cls``, the rest)."""
    names = {f.name for f in fields(cls)}
    return ({k: v for k, v in kwargs.items() if k in names},
            {k: v for k, v in kwargs.items() if k not in names})


@dataclass(frozen=True)
class SampleSettings:
    """How to run the reverse process (see `sampling.generate`).

    ``options`` holds the strategy's own options (e.g. ``{"threshold": 0.9}``); the strategy
    declares which it accepts (`strategies.Strategy.options`).
    """

    length: int = 128
    steps: int = 32
    strategy: str | None = None
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    block_size: int | None = None
    seed: int | None = None
    num_samples: int = 1
    record: bool = True
    revisable: tuple[int, ...] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        check_int(self.length, "length")
        check_int(self.steps, "steps")
        check_int(self.num_samples, "num_samples")
        check_int(self.block_size, "block_size", allow_none=True)
        t = self.temperature
        if not isinstance(t, (int, float)) or isinstance(t, bool) or not t > 0:
            raise ValueError(f"temperature must be > 0, got {t!r}")
        if self.top_k is not None and (not isinstance(self.top_k, int) or self.top_k < 1):
            raise ValueError(f"top_k must be None or an int >= 1, got {self.top_k!r}")
        p = self.top_p
        if p is not None and (not isinstance(p, (int, float)) or not 0 < p <= 1):
            raise ValueError(f"top_p must be None or in (0, 1], got {p!r}")
        if self.strategy is not None and not isinstance(self.strategy, str):
            raise TypeError(f"strategy must be a str or None, got {self.strategy!r}")
        rev = self.revisable
        if rev is not None and not isinstance(rev, tuple):
            if isinstance(rev, (str, bytes)) or not isinstance(rev, Sequence):
                raise TypeError(f"revisable must be a list of int text positions, got {rev!r}")
            object.__setattr__(self, "revisable", tuple(rev))
        object.__setattr__(self, "options", dict(self.options))

    def with_(self, **changes) -> SampleSettings:
        """A copy with some fields changed; unknown names go to ``options``."""
        known, extra = split_known(SampleSettings, changes)
        if extra:
            known["options"] = {**known.get("options", self.options), **extra}
        return replace(self, **known)


@dataclass(frozen=True)
class TrainSettings:
    """How to train (see `train.train`); ``loss_options`` go to the objective's loss."""

    objective: str = "mdlm"
    steps: int = 1000
    batch_size: int = 32
    seq_len: int = 128
    lr: float = 1e-3
    seed: int = 0
    warmup: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    eval_every: int = 0
    eval_batches: int = 4
    checkpoint_every: int = 0
    amp: bool | None = None
    packing: bool | None = None
    progress: bool = True
    loss_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        for name in ("steps", "batch_size", "seq_len"):
            check_int(getattr(self, name), name)
        if not isinstance(self.lr, (int, float)) or not 0 < self.lr < 1:
            raise ValueError(f"lr must be a float in (0, 1), got {self.lr!r}")
        object.__setattr__(self, "loss_options", dict(self.loss_options))

    def with_(self, **changes) -> TrainSettings:
        """A copy with some fields changed; unknown names go to ``loss_options``."""
        known, extra = split_known(TrainSettings, changes)
        if extra:
            known["loss_options"] = {**known.get("loss_options", self.loss_options), **extra}
        return replace(self, **known)
