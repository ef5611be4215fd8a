"""What every benchmark script shares: the common flags, thread/device set-up and best-of timing."""

from __future__ import annotations

import argparse

import torch

import diffusion_lab as dl


def parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser with --size, --repeats, --threads and --device."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--size", default="s")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: stable on a shared machine)")
    ap.add_argument("--device", default=None, help="default: dl.get_device()")
    return ap


def prepare(args) -> torch.device:
    """Apply --threads, seed everything, return the device (--device or dl.get_device())."""
    torch.set_num_threads(args.threads)
    dl.seed_everything(0)
    return torch.device(args.device) if args.device else dl.get_device()


def best_of(fn, repeats: int) -> tuple[float, object]:
    """(fastest wall-clock of ``repeats`` calls, the last result): `dl.metrics.best_time`."""
    return dl.metrics.best_time(fn, repeats)
