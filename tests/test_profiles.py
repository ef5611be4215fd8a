"""Device, profile and seeding: the knobs every chapter turns first (`diffusion_lab.runtime`,
`diffusion_lab.course.profiles`)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import diffusion_lab as dl
from diffusion_lab.course.profiles import PROFILE_NAMES


def test_get_device_honours_env_cpu(monkeypatch):
    monkeypatch.setenv("DIFFUSION_LAB_DEVICE", "cpu")
    assert dl.get_device() == torch.device("cpu")


@pytest.mark.parametrize("garbage", ["gpu", "banana", "cuda:x"])
def test_get_device_rejects_garbage(monkeypatch, garbage):
    monkeypatch.setenv("DIFFUSION_LAB_DEVICE", garbage)
    with pytest.raises(ValueError, match="DIFFUSION_LAB_DEVICE") as err:
        dl.get_device()
    assert repr(garbage) in str(err.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_get_device_cuda_without_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("DIFFUSION_LAB_DEVICE", "cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        dl.get_device()


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_profile_honours_env(monkeypatch, name):
    monkeypatch.setenv("DIFFUSION_LAB_PROFILE", name)
    assert dl.profile().name == name
    assert dl.profile() is dl.course.profiles.PROFILES[name]


def test_profile_argument_beats_env(monkeypatch):
    monkeypatch.setenv("DIFFUSION_LAB_PROFILE", "gpu")
    assert dl.profile("smoke").name == "smoke"


def test_profile_default_follows_device(monkeypatch):
    monkeypatch.delenv("DIFFUSION_LAB_PROFILE", raising=False)
    monkeypatch.setenv("DIFFUSION_LAB_DEVICE", "cpu")
    assert dl.profile().name == "cpu"


@pytest.mark.parametrize("via_env", [False, True])
def test_profile_rejects_unknown_name_listing_valid_ones(monkeypatch, via_env):
    if via_env:
        monkeypatch.setenv("DIFFUSION_LAB_PROFILE", "laptop")
    with pytest.raises(ValueError) as err:
        dl.profile(None if via_env else "laptop")
    message = str(err.value)
    assert "'laptop'" in message
    for valid in PROFILE_NAMES:
        assert valid in message


def test_profile_sizes_grow_from_smoke_to_gpu():
    smoke, cpu, gpu = (dl.course.profiles.PROFILES[n] for n in ("smoke", "cpu", "gpu"))
    for field in ("seq_len", "train_steps", "batch_size", "gen_length"):
        assert getattr(smoke, field) <= getattr(cpu, field) <= getattr(gpu, field), field
    assert cpu.with_(train_steps=7).train_steps == 7


def test_seed_everything_reproduces_every_rng():
    def draws(seed):
        gen = dl.seed_everything(seed)
        return (torch.rand(5), torch.randn(3), torch.rand(4, generator=gen), random.random(),
                np.random.rand())

    first, second, other = draws(123), draws(123), draws(124)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(torch.as_tensor(a), torch.as_tensor(b))
    assert not torch.equal(first[0], other[0])
    assert first[3] != other[3]


@pytest.mark.parametrize("bad", [1.5, "0", None, True])
def test_seed_everything_rejects_non_int(bad):
    with pytest.raises(TypeError, match="seed") as err:
        dl.seed_everything(bad)
    assert repr(bad) in str(err.value)


def test_cache_dir_honours_env(monkeypatch, tmp_path):
    target = tmp_path / "cache" / "here"
    monkeypatch.setenv("DIFFUSION_LAB_CACHE", str(target))
    assert dl.cache_dir() == target
    assert target.is_dir()
