"""Calls across the sandbox wall, as files: the grader calls a function that lives in a kernel.

A student's answer may be code (``split_fractions``, a registered sampling rule); a chapter's
context may be an object only the teacher's kernel holds (``lang``, a ``solve`` closure). The
grader's checks run in the grader's process, so such a value reaches them as a proxy
(`RemoteFunction`, `RemoteObject`) whose calls travel to the kernel that holds it: the arguments
as data (``codec``), the result back as data or as a new proxy. Nothing but the return value of
the student's own code crosses back, and the grader never unpickles, imports or runs what a kernel
sends.

The channel is two folders: ``inbox`` (written by the grader only; read-only inside the sandbox)
and ``outbox`` (written by the sandbox). The grader's n-th request is message ``g-n`` in the
inbox, its answer ``g-n-r`` in the outbox; a kernel's m-th request (a call back into the grader:
a rule the teacher's kernel runs on behalf of a student) is ``k-m`` in the outbox, answered by
``k-m-r`` in the inbox. A waiting side serves the other side's requests meanwhile, so calls may
nest. The grader serves only ``call`` of objects it exported on purpose, never ``getattr`` (a
kernel cannot walk from a proxy into the grader's modules).
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import codec


class RemoteError(RuntimeError):
    """The other side raised, timed out, or is gone; the message says which."""


class _Stop(Exception):
    """A ``release`` request: the serving loop returns."""


class Endpoint:
    """One side of a channel. ``side`` is "grader" or "kernel"; ``export`` says whether this
    side may hand its objects to the peer as handles (never the grader to a student's kernel);
    ``trusted`` whether the peer may send models and tokenizers (the teacher's kernel only)."""

    def __init__(self, inbox: Path, outbox: Path, side: str, *, export: bool,
                 trusted: bool = False, full: bool = False, timeout: float = 300.0,
                 alive: Callable[[], bool] = lambda: True, getattr_allowed: bool = False):
        self.inbox, self.outbox, self.side = Path(inbox), Path(outbox), side
        self.mine, self.theirs = ("g", "k") if side == "grader" else ("k", "g")
        self.export, self.trusted, self.full = export, trusted, full
        self.timeout, self.alive, self.getattr_allowed = timeout, alive, getattr_allowed
        self.objects: dict[int, Any] = {}
        self.saved_rules: dict = {}  # a kernel's own rules that the grader replaced for a check
        self._ids = itertools.count()
        self._sent = itertools.count()
        self._served = 0
        self.scratch = 0  # for unique model folder names

    # ------------------------------------------------------------ values

    def _handle(self, obj) -> int:
        for key, value in self.objects.items():
            if value is obj:
                return key
        key = next(self._ids)
        self.objects[key] = obj
        return key

    def _theirs(self, obj) -> int | None:
        return obj._id if isinstance(obj, _Remote) and obj._endpoint is self else None

    def _write(self, folder: Path, name: str, value) -> list:
        models = None
        if self.full:
            models = folder / f"{name}.models"
            models.mkdir(exist_ok=True)
        enc = codec.Encoder(models, full=self.full, handles=self._handle if self.export else None,
                            callbacks=self._theirs)
        codec.write(folder, name, enc(value), enc.tensors)
        return enc.generators

    def _read(self, folder: Path, name: str):
        tree, tensors = codec.read(folder, name, trusted=self.trusted)
        dec = codec.Decoder(tensors, folder / f"{name}.models", trusted=self.trusted,
                            remote=self._proxy, callback=self._local)
        return dec(tree), dec.generators

    def _local(self, key):
        if key not in self.objects:
            raise codec.CodecError(f"no object {key!r} was handed out")
        return self.objects[key]

    def _proxy(self, node: dict):
        cls = RemoteFunction if node.get("callable") else RemoteObject
        return cls(self, int(node["id"]), str(node.get("type", "")), str(node.get("repr", "")))

    # ------------------------------------------------------------ requests

    def request(self, op: str, **fields) -> Any:
        """Send a request, serve the peer's requests while waiting, return the answer's value."""
        n = next(self._sent)
        name = f"{self.mine}-{n}"
        gens = self._write(self.inbox if self.side == "grader" else self.outbox, name,
                           {"op": op, **fields})
        answers = self.outbox if self.side == "grader" else self.inbox
        reply = answers / f"{name}-r.json"
        start, pause = time.monotonic(), 0.0005
        while not reply.exists():
            if self._serve_pending():
                continue
            if time.monotonic() - start > self.timeout:
                raise RemoteError(f"no answer within {self.timeout:.0f} s (an endless loop?)")
            if not self.alive():
                raise RemoteError("the kernel is gone (it died, or its sandbox was stopped)")
            time.sleep(pause)
            pause = min(pause * 2, 0.02)
        try:
            doc, _ = self._read(answers, f"{name}-r")
        finally:
            self._discard(answers, f"{name}-r")
            self._discard(self.inbox, name)  # answered: the kernel has read it
        if not isinstance(doc, dict) or "ok" not in doc:
            raise RemoteError("a malformed answer")
        if not doc["ok"]:
            raise RemoteError(str(doc.get("error", "?"))[:500])
        for gen, state in zip(gens, doc.get("generators", []), strict=False):
            gen.set_state(state)  # the callee drew from the generator it was given
        return doc.get("value")

    def _serve_pending(self) -> bool:
        folder = self.outbox if self.side == "grader" else self.inbox
        name = f"{self.theirs}-{self._served}"
        if not (folder / f"{name}.json").exists():
            return False
        self._served += 1
        try:
            self._answer(folder, name)
        finally:
            self._discard(folder, name)
        return True

    def _discard(self, folder: Path, name: str) -> None:
        """The grader deletes a message once read: the outbox counts against the sandbox's
        ``--disk`` (a model called 16 times per check, for a class, would fill it with replies
        no one reads again). A kernel may not write its inbox, and leaves it."""
        if self.side != "grader":
            return
        for suffix in (".json", ".safetensors"):
            with contextlib.suppress(OSError):
                (folder / f"{name}{suffix}").unlink()

    def _answer(self, folder: Path, name: str) -> None:
        out = self.inbox if self.side == "grader" else self.outbox
        gens = []
        try:
            (req, gens) = self._read(folder, name)
            value = self._perform(req)
            reply = {"ok": True, "value": value, "generators": [g.get_state() for g in gens]}
        except _Stop:
            reply = {"ok": True, "value": None, "stop": True}
        except Exception as err:  # noqa: BLE001 - the caller gets the error, the server lives
            reply = {"ok": False, "error": f"{type(err).__name__}: {err}"[:500]}
        try:
            self._write(out, f"{name}-r", reply)
        except codec.CodecError as err:  # a result that cannot be sent
            self._write(out, f"{name}-r", {"ok": False, "error": f"CodecError: {err}"[:500]})
        if reply.get("stop"):
            raise _Stop

    def _perform(self, req):
        if not isinstance(req, dict):
            raise codec.CodecError("a request must be a dict")
        op = req.get("op")
        if op == "call":
            target = req.get("target")
            if not callable(target) or (isinstance(target, _Remote) and target._endpoint is self):
                raise TypeError("only a handed-out callable may be called")
            return target(*req.get("args", ()), **req.get("kwargs", {}))
        if op == "getattr" and self.getattr_allowed:
            return getattr(req.get("target"), str(req.get("name")))
        if op == "release" and self.side == "kernel":
            raise _Stop
        if op in ("register_strategy", "unregister_strategy") and self.side == "kernel":
            from ..registry import STRATEGIES
            name = str(req["name"])
            if op == "register_strategy":
                self.saved_rules.setdefault(name, STRATEGIES.get(name))
                STRATEGIES[name] = req["strategy"]
            elif self.saved_rules.get(name) is not None:
                STRATEGIES[name] = self.saved_rules.pop(name)  # the kernel's own rule back
            else:
                self.saved_rules.pop(name, None)
                STRATEGIES.pop(name, None)
            return None
        raise ValueError(f"operation {op!r} is not served here")

    def serve(self, idle_timeout: float = 7 * 86400.0) -> None:
        """Kernel side: answer the grader's requests until it sends ``release``."""
        start, pause = time.monotonic(), 0.0005
        while True:
            try:
                if self._serve_pending():
                    start, pause = time.monotonic(), 0.0005
                    continue
            except _Stop:
                return
            if time.monotonic() - start > idle_timeout:
                return
            time.sleep(pause)
            pause = min(pause * 2, 0.02)

    # ------------------------------------------------------------ proxies' operations

    def call(self, remote, args, kwargs):
        return self.request("call", target=remote, args=list(args), kwargs=dict(kwargs))

    def getattr(self, remote, name: str):
        return self.request("getattr", target=remote, name=name)

    def release(self) -> None:
        self.request("release")


class _Remote:
    """A value that lives in the other process."""

    def __init__(self, endpoint: Endpoint, key: int, type_name: str, text: str):
        self._endpoint, self._id, self._type, self._text = endpoint, key, type_name, text

    def __repr__(self) -> str:
        return f"<remote {self._type}: {self._text}>"


class RemoteObject(_Remote):
    """An object of the other side: attribute reads travel there."""

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return self._endpoint.getattr(self, name)


class RemoteFunction(RemoteObject):
    """A function (or callable object) of the other side: calls travel there."""

    def __call__(self, *args, **kwargs):
        return self._endpoint.call(self, args, kwargs)
