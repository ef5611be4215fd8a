"""Values as data across a process boundary: JSON plus safetensors, never pickle.

What a submission's kernel hands the grader (the answers a check is called with) and what the
grader and a kernel say to each other (``classroom.rpc``) travel as a *message*: one JSON tree
(``NAME.json``) and, when there are tensors, one safetensors file (``NAME.safetensors``) whose
keys the tree names. Decoding builds only data — numbers, strings, lists, tuples, dicts, ``...``,
tensors, the library's own dataclasses (`DATACLASSES`) and functions (by name, resolved in the
decoding process) — so reading a message never runs the sender's code, unlike ``pickle``
(otter-grader unpickles what the student's kernel wrote; we do not).

Everything else crosses as a *handle*: a function or object stays where it lives and the other
side gets a proxy that calls it there (``rpc``). A trusted sender (the teacher edition's kernel)
may also send transformers models and tokenizers, as ``save_pretrained`` folders (safetensors
weights, JSON config and vocabulary), and objects of `RECONSTRUCT` (a grammar, a task) as their
constructor arguments.

Tree nodes: JSON null/bool/int/str/list are themselves; every JSON object is a tagged node
``{"$": kind, ...}`` (so a dict of the sender can never pose as a tag).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import math
import os
from pathlib import Path
from typing import Any

import torch

MAX_JSON_BYTES = 8 << 20  # what one message of an untrusted sender may hold
MAX_TENSOR_BYTES = 64 << 20
TRUSTED_FACTOR = 64  # a trusted sender (the teacher edition's kernel) may send 64x more
FUNCTION_MODULES = ("diffusion_lab.registry", "diffusion_lab.strategies", "diffusion_lab.noise")
DATACLASSES = {  # "module:Class" the decoder may build: data records of the library
    "diffusion_lab.trajectory:Trajectory", "diffusion_lab.trajectory:Frame",
    "diffusion_lab.registry:StepContext", "diffusion_lab.registry:Strategy",
    "diffusion_lab.course.profiles:Profile",
}


class CodecError(ValueError):
    """A message that is not valid data (too big, malformed, or a kind not allowed here)."""


def _qualname(obj) -> str:
    return f"{obj.__module__}:{obj.__qualname__}"


def _resolve(name: str):
    module, _, attr = name.partition(":")
    if not module.startswith("diffusion_lab") or not attr:
        raise CodecError(f"{name!r} is not a diffusion_lab name")
    target = importlib.import_module(module)
    for part in attr.split("."):
        target = getattr(target, part)
    return target


def _library_function(name: str):
    """A plain function of `FUNCTION_MODULES`, by ``module:qualname`` (never an attribute walk
    into what a module imported, such as ``os``)."""
    module, _, attr = name.partition(":")
    if module not in FUNCTION_MODULES or "." in attr:
        raise CodecError(f"{name!r} is not a function the grader resolves by name")
    target = getattr(importlib.import_module(module), attr, None)
    if not inspect.isfunction(target) or target.__module__ != module:
        raise CodecError(f"{name!r} is not a function of {module}")
    return target


def _reconstructors() -> dict:
    """``type -> (to constructor kwargs, from kwargs)`` for library objects rebuilt as data."""
    from ..worlds import tasks
    from ..worlds.grammar import Grammar
    from ..worlds.grammar_oracle import GrammarOracleForMaskedLM

    found = {Grammar: (lambda g: {"rules": g.rules, "lexicon": _lexicon(g), "start": g.start,
                                  "max_len": g.max_len}, lambda kw: Grammar(**kw)),
             GrammarOracleForMaskedLM: (lambda m: {"grammar": m.grammar},
                                        lambda kw: GrammarOracleForMaskedLM(kw["grammar"]))}
    for task, arg, attr in ((tasks.Addition, "digits", "digits"),
                            (tasks.Sorting, "length", "n_digits"),
                            (tasks.MiniSudoku, "holes", "holes")):
        found[task] = ((lambda obj, arg=arg, attr=attr: {arg: getattr(obj, attr)}),
                       (lambda kw, task=task: task(**kw)))
    return found


def _lexicon(g) -> dict:
    """A grammar's ``{category: {word: weight}}`` back from its emission table (the weights
    normalised, which the grammar does anyway; words in their id order)."""
    lexicon: dict = {}
    for i, word in enumerate(g.words[1:], start=1):
        cat = g.category_of[word]
        lexicon.setdefault(cat, {})[word] = float(g.emission[g.categories.index(cat), i])
    return lexicon


class Encoder:
    """Turns values into a tree + tensors. ``full``: models and tokenizers as folders (trusted
    senders only); otherwise they, like every function and object, become handles."""

    def __init__(self, folder: Path | None = None, *, full: bool = False, handles=None,
                 callbacks=None):
        self.tensors: dict[str, torch.Tensor] = {}
        self.folder, self.full = folder, full
        self.handles = handles  # the sender's objects: register(obj) -> int
        self.callbacks = callbacks  # proxies of the receiver's objects: id_of(obj) -> int | None
        self.generators: list[torch.Generator] = []

    def tensor(self, t) -> str:
        key = f"t{len(self.tensors)}"
        self.tensors[key] = t.detach().to("cpu").clone().contiguous()
        return key

    def __call__(self, v) -> Any:  # noqa: C901 - one branch per kind, in one place
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, int):
            return int(v)
        if isinstance(v, float):
            return v if math.isfinite(v) else {"$": "float", "v": repr(v)}
        if v is Ellipsis:
            return {"$": "ellipsis"}
        if isinstance(v, list):
            return [self(x) for x in v]
        if isinstance(v, tuple) and not hasattr(v, "_fields"):
            return {"$": "tuple", "items": [self(x) for x in v]}
        if isinstance(v, dict):
            return {"$": "dict", "items": [[self(k), self(x)] for k, x in v.items()]}
        if isinstance(v, torch.Tensor):
            return {"$": "tensor", "key": self.tensor(v)}
        if isinstance(v, torch.Generator):
            self.generators.append(v)
            return {"$": "generator", "state": self.tensor(v.get_state())}
        mod = type(v).__module__
        if mod == "numpy":
            import numpy as np
            if isinstance(v, np.ndarray) and v.dtype != object:
                return {"$": "ndarray", "key": self.tensor(torch.from_numpy(np.array(v)))}
            if isinstance(v, np.generic):
                return self(v.item())
        own = self.callbacks(v) if self.callbacks else None
        if own is not None:
            return {"$": "callback", "id": own}
        if dataclasses.is_dataclass(v) and not isinstance(v, type) and \
                _qualname(type(v)) in DATACLASSES:
            return {"$": "dataclass", "type": _qualname(type(v)),
                    "fields": {f.name: self(getattr(v, f.name)) for f in dataclasses.fields(v)}}
        if inspect.isfunction(v) and v.__module__ in FUNCTION_MODULES:
            try:
                if _library_function(_qualname(v)) is v:  # the library's own, unchanged
                    return {"$": "libfunc", "name": _qualname(v)}
            except (CodecError, ImportError, AttributeError):
                pass
        if self.full:
            node = self._full(v)
            if node is not None:
                return node
        if self.handles is None:
            raise CodecError(f"a {type(v).__name__} cannot be sent as data")
        return {"$": "remote", "id": self.handles(v), "callable": callable(v),
                "type": type(v).__name__, "repr": _short_repr(v)}

    def _full(self, v):
        from transformers import PreTrainedModel, PreTrainedTokenizerBase

        rebuild = _reconstructors().get(type(v))
        if rebuild is not None:
            return {"$": "object", "type": _qualname(type(v)), "kwargs": self(rebuild[0](v))}
        if isinstance(v, (PreTrainedModel, PreTrainedTokenizerBase)) and self.folder is not None:
            kind = "model" if isinstance(v, PreTrainedModel) else "tokenizer"
            sub = f"{kind}{len(list(self.folder.glob(f'{kind}*')))}"
            v.save_pretrained(self.folder / sub, **({"safe_serialization": True}
                                                   if kind == "model" else {}))
            device = str(next(v.parameters()).device) if kind == "model" else None
            return {"$": kind, "dir": sub, "class": type(v).__name__, "device": device}
        return None


def _short_repr(v) -> str:
    try:
        return repr(v)[:80]
    except Exception:  # noqa: BLE001 - a repr that raises is still an object
        return f"<{type(v).__name__}>"


class Decoder:
    """Builds values from a tree + tensors. ``trusted`` allows models, tokenizers and
    reconstructed objects; ``remote(node)`` makes the proxy of a sender's handle;
    ``callback(id)`` returns this side's own object a handle refers to."""

    def __init__(self, tensors: dict, folder: Path | None = None, *, trusted: bool = False,
                 remote=None, callback=None):
        self.tensors, self.folder, self.trusted = tensors, folder, trusted
        self.remote, self.callback = remote, callback
        self.generators: list[torch.Generator] = []

    def tensor(self, key):
        if key not in self.tensors:
            raise CodecError(f"no tensor {key!r} in the message")
        return self.tensors[key]

    def __call__(self, n) -> Any:  # noqa: C901
        if n is None or isinstance(n, (bool, int, float, str)):
            return n
        if isinstance(n, list):
            return [self(x) for x in n]
        if not isinstance(n, dict):
            raise CodecError(f"unexpected node {type(n).__name__}")
        kind = n.get("$")
        if kind == "float":
            return float(n["v"])
        if kind == "ellipsis":
            return ...
        if kind == "tuple":
            return tuple(self(x) for x in n["items"])
        if kind == "dict":
            return {_hashable(self(k)): self(v) for k, v in n["items"]}
        if kind == "tensor":
            return self.tensor(n["key"])
        if kind == "ndarray":
            return self.tensor(n["key"]).numpy()
        if kind == "generator":
            g = torch.Generator()
            g.set_state(self.tensor(n["state"]))
            self.generators.append(g)
            return g
        if kind == "dataclass":
            if n["type"] not in DATACLASSES:
                raise CodecError(f"{n['type']!r} is not an allowed record")
            return _resolve(n["type"])(**{k: self(v) for k, v in n["fields"].items()})
        if kind == "libfunc":
            return _library_function(str(n["name"]))
        if kind == "remote" and self.remote is not None:
            return self.remote(n)
        if kind == "callback" and self.callback is not None:
            return self.callback(n["id"])
        if self.trusted and kind in ("model", "tokenizer", "object"):
            return self._full(n)
        raise CodecError(f"a {kind!r} node is not allowed here")

    def _full(self, n):
        if n["$"] == "object":
            target = _resolve(n["type"])
            rebuild = _reconstructors().get(target)
            if rebuild is None:
                raise CodecError(f"{n['type']!r} cannot be rebuilt")
            return rebuild[1](self(n["kwargs"]))
        path = self.folder / n["dir"]
        if n["$"] == "tokenizer":
            from transformers import AutoTokenizer
            return AutoTokenizer.from_pretrained(path)
        import transformers
        cls = getattr(transformers, n["class"], None)
        if not (isinstance(cls, type) and issubclass(cls, transformers.PreTrainedModel)):
            raise CodecError(f"{n['class']!r} is not a transformers model class")
        return cls.from_pretrained(path, use_safetensors=True).eval()


def _hashable(k):
    return tuple(_hashable(x) for x in k) if isinstance(k, list) else k


# ---------------------------------------------------------------- messages on disk


def write(folder: Path, name: str, tree, tensors: dict) -> None:
    """Write ``NAME.safetensors`` then ``NAME.json`` (atomically: the JSON's arrival means the
    message is complete)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    if tensors:
        save_file(tensors, str(folder / f".{name}.safetensors.tmp"))
        os.chmod(folder / f".{name}.safetensors.tmp", 0o644)  # the other side may be another user
        os.replace(folder / f".{name}.safetensors.tmp", folder / f"{name}.safetensors")
    tmp = folder / f".{name}.json.tmp"
    tmp.write_text(json.dumps({"tree": tree, "tensors": bool(tensors)}, allow_nan=False),
                   encoding="utf-8")
    os.replace(tmp, folder / f"{name}.json")


def read_file(path: Path, limit: int) -> bytes:
    """A regular file's bytes, never following a link, at most ``limit`` bytes (else
    `CodecError`): what the sandbox wrote may be a trap."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        raise CodecError(f"cannot open {Path(path).name}: {err.strerror}") from None
    try:
        import stat
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CodecError(f"{Path(path).name} is not a regular file")
        if info.st_size > limit:
            raise CodecError(f"{Path(path).name} holds {info.st_size} bytes, over {limit}")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(limit + 1)[:limit]
    finally:
        os.close(fd)


def read(folder: Path, name: str, *, trusted: bool = False) -> tuple[Any, dict]:
    """(tree, tensors) of message ``name`` in ``folder``, with size limits."""
    from safetensors.torch import load

    factor = TRUSTED_FACTOR if trusted else 1
    raw = read_file(Path(folder) / f"{name}.json", MAX_JSON_BYTES * factor)
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as err:
        raise CodecError(f"{name}.json is not JSON: {err}") from None
    if not isinstance(doc, dict) or "tree" not in doc:
        raise CodecError(f"{name}.json is not a message")
    tensors = {}
    if doc.get("tensors"):
        try:
            tensors = load(read_file(Path(folder) / f"{name}.safetensors",
                                     MAX_TENSOR_BYTES * factor))
        except CodecError:
            raise
        except Exception as err:  # noqa: BLE001 - a malformed file is bad data, not a crash
            raise CodecError(f"{name}.safetensors could not be read: {type(err).__name__}: "
                             f"{err}") from None
    return doc["tree"], tensors
