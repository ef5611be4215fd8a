"""Calls across the sandbox wall (diffusion_lab/classroom/rpc.py), both ends in this process: the
grader calls a kernel's function and reads its attributes, a generator the callee draws from comes
back advanced, calls nest (a kernel calling back what the grader handed it), and a kernel can
neither walk into the grader nor keep it waiting forever."""

from __future__ import annotations

import threading

import pytest
import torch

from diffusion_lab.classroom.rpc import Endpoint, RemoteError, RemoteFunction, RemoteObject


class Shape:
    def __init__(self):
        self.sides = 4

    def area(self, side):
        return side * side


@pytest.fixture
def pair(tmp_path):
    inbox, outbox = tmp_path / "in", tmp_path / "out"
    inbox.mkdir()
    outbox.mkdir()
    kernel = Endpoint(inbox, outbox, "kernel", export=True, trusted=True, getattr_allowed=True)
    grader = Endpoint(inbox, outbox, "grader", export=True, timeout=20)
    thread = threading.Thread(target=kernel.serve, daemon=True)
    thread.start()
    yield grader, kernel
    try:
        grader.release()
    except RemoteError:
        pass
    thread.join(5)


def _handed(grader, kernel, value):
    kernel._write(kernel.outbox, "capture-0", value)
    return grader._read(grader.outbox, "capture-0")[0]


def test_calls_and_attributes_travel(pair):
    grader, kernel = pair

    def draw(g, n):
        return torch.rand(n, generator=g, dtype=torch.float64)

    got = _handed(grader, kernel, {"double": lambda x: 2 * x, "shape": Shape(), "draw": draw})
    assert isinstance(got["double"], RemoteFunction) and callable(got["double"])
    assert isinstance(got["shape"], RemoteObject) and not callable(got["shape"])
    assert torch.equal(got["double"](torch.arange(3)), torch.tensor([0, 2, 4]))
    assert got["shape"].sides == 4 and got["shape"].area(3) == 9
    g, same = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(got["draw"](g, 4), torch.rand(4, generator=same, dtype=torch.float64))
    assert torch.equal(torch.rand(2, generator=g), torch.rand(2, generator=same))  # advanced


def test_errors_come_back_as_remote_errors(pair):
    grader, kernel = pair
    got = _handed(grader, kernel, {"bad": lambda: 1 / 0})
    with pytest.raises(RemoteError, match="ZeroDivisionError"):
        got["bad"]()


def test_calls_nest_and_the_grader_serves_calls_only(pair):
    grader, kernel = pair
    got = _handed(grader, kernel, {"apply": lambda f, x: f(x) + 1,
                                   "peek": lambda f: f.__globals__})
    assert got["apply"](lambda x: 10 * x, 2) == 21  # the kernel called back into the grader
    with pytest.raises(RemoteError):
        got["peek"](len)  # no attribute of a grader object is served


def test_a_silent_or_dead_kernel_does_not_hang_the_grader(tmp_path):
    inbox, outbox = tmp_path / "in", tmp_path / "out"
    inbox.mkdir()
    outbox.mkdir()
    kernel = Endpoint(inbox, outbox, "kernel", export=True)
    grader = Endpoint(inbox, outbox, "grader", export=False, timeout=0.5)
    got = _handed(grader, kernel, {"f": print})
    with pytest.raises(RemoteError, match="no answer within"):
        got["f"]()
    grader.alive = lambda: False
    with pytest.raises(RemoteError, match="gone"):
        got["f"]()


def test_the_grader_hands_nothing_to_a_student_kernel(tmp_path):
    from diffusion_lab.classroom.codec import CodecError

    grader = Endpoint(tmp_path, tmp_path, "grader", export=False)
    with pytest.raises(CodecError):
        grader._write(tmp_path, "g-0", {"f": open})


def test_the_grader_deletes_what_it_has_read(pair):
    """A kernel's replies count against its sandbox's ``--disk``: 20 calls that each return
    4 MB must not leave 80 MB behind (chapter 0's check calls the teacher's model 16 times)."""
    grader, kernel = pair
    big = _handed(grader, kernel, lambda n: torch.zeros(n))
    for _ in range(20):
        assert big(1 << 20).shape == (1 << 20,)
    left = [p.name for p in grader.outbox.iterdir() if not p.name.startswith("capture-")]
    assert left == [], left
    assert [p.name for p in grader.inbox.iterdir()] == []  # its requests, once answered
