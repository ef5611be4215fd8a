"""Two grading runs on one machine never share a sandbox user id (``classroom.userids``): the
second would count the first's processes against its limit and kill its kernels (``reap``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from diffusion_lab.classroom.userids import UserIds

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="only a root grader uses ids of its own")


@root_only
def test_two_runs_hold_different_ids(tmp_path):
    with UserIds(2, base=70000, span=5, folder=tmp_path) as first:
        with UserIds(2, base=70000, span=5, folder=tmp_path) as second:
            assert first.ids == [70000, 70001] and second.ids == [70002, 70003]
            with pytest.raises(RuntimeError, match="only 1 of the 2"):
                UserIds(2, base=70000, span=5, folder=tmp_path)
        assert UserIds(2, base=70000, span=5, folder=tmp_path).ids == [70002, 70003]  # let go


@root_only
def test_ids_held_by_another_process_and_freed_when_it_ends(tmp_path):
    code = ("import sys, time; from pathlib import Path; "
            "from diffusion_lab.classroom.userids import UserIds; "
            f"ids = UserIds(1, base=70000, span=5, folder=Path({str(tmp_path)!r})); "
            "print(ids.ids, flush=True); time.sleep(30)")
    other = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "[70000]"
        assert UserIds(1, base=70000, span=5, folder=tmp_path).ids == [70001]
    finally:
        other.kill()
        other.wait()
    assert UserIds(1, base=70000, span=5, folder=tmp_path).ids == [70000]


def test_bad_count():
    with pytest.raises(ValueError, match="count"):
        UserIds(0)
