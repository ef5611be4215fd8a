"""torch's thread count from the CPUs the process may use: affinity, cgroup v1/v2 quota, env."""

from __future__ import annotations

import pytest

from diffusion_lab import runtime


def _cgroup(tmp_path, proc_lines: str, files: dict[str, str]):
    root = tmp_path / "cgroup"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    root.mkdir(exist_ok=True)
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text(proc_lines)
    return root, proc


def test_cgroup_v2_quota_in_own_group_and_parents(tmp_path):
    root, proc = _cgroup(tmp_path, "0::/kubepods/pod1/box\n", {
        "kubepods/pod1/box/cpu.max": "max 100000\n",      # no limit here ...
        "kubepods/pod1/cpu.max": "150000 100000\n",       # ... but 1.5 CPUs above
        "cpu.max": "max 100000\n",
    })
    assert runtime.cgroup_cpu_limit(root, proc) == 1.5


def test_cgroup_v2_without_quota_is_none(tmp_path):
    root, proc = _cgroup(tmp_path, "0::/\n", {"cpu.max": "max 100000\n"})
    assert runtime.cgroup_cpu_limit(root, proc) is None


def test_cgroup_v1_quota(tmp_path):
    root, proc = _cgroup(tmp_path, "4:cpu,cpuacct:/docker/abc\n3:memory:/docker/abc\n", {
        "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "200000\n",
        "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
    })
    assert runtime.cgroup_cpu_limit(root, proc) == 2.0
    (root / "cpu,cpuacct/docker/abc/cpu.cfs_quota_us").write_text("-1\n")
    assert runtime.cgroup_cpu_limit(root, proc) is None


def test_unreadable_proc_file_means_no_quota(tmp_path):
    assert runtime.cgroup_cpu_limit(tmp_path, tmp_path / "missing") is None


def test_usable_cpus_takes_the_tighter_of_affinity_and_quota(monkeypatch):
    monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(runtime, "cgroup_cpu_limit", lambda *a: 1.5)
    assert runtime.usable_cpus() == 2  # ceil(1.5)
    monkeypatch.setattr(runtime, "cgroup_cpu_limit", lambda *a: None)
    assert runtime.usable_cpus() == 4
    monkeypatch.setattr(runtime, "cgroup_cpu_limit", lambda *a: 0.2)
    assert runtime.usable_cpus() == 1


def test_env_overrides_and_bad_values_raise(monkeypatch):
    monkeypatch.setattr(runtime, "usable_cpus", lambda: 2)
    monkeypatch.delenv("DIFFUSION_LAB_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert runtime.choose_threads() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # as tests/conftest.py sets for xdist workers
    assert runtime.choose_threads() == 1
    for ignored in ("8", "4,2", "0", ""):  # a cap, never a raise; OpenMP's own syntax ignored
        monkeypatch.setenv("OMP_NUM_THREADS", ignored)
        assert runtime.choose_threads() == 2
    monkeypatch.setenv("DIFFUSION_LAB_THREADS", "1")
    assert runtime.choose_threads() == 1
    for bad in ("0", "-2", "two"):
        monkeypatch.setenv("DIFFUSION_LAB_THREADS", bad)
        with pytest.raises(ValueError, match="DIFFUSION_LAB_THREADS must be a positive int"):
            runtime.choose_threads()


def test_setup_prints_the_thread_count(monkeypatch, capsys):
    import torch

    import diffusion_lab as dl

    before = torch.get_num_threads()
    monkeypatch.setenv("DIFFUSION_LAB_THREADS", "1")
    try:
        dl.notebook.setup(seed=0, profile_name="smoke")
    finally:
        torch.set_num_threads(before)
    out = capsys.readouterr().out
    assert "1 torch thread" in out and "claims reported, not enforced" in out
