"""Data-parallel training past one device: `dl.train` under ``torchrun``, unchanged notebooks.

    torchrun --nproc_per_node=4 my_training_script.py     # 4 GPUs (nccl); on CPUs: gloo

``torchrun`` starts one process per device and sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``.
`dl.train` notices them (`active`), joins the process group (NCCL on CUDA, gloo on CPU), and then
each step

* every rank draws the *same* global batch from the same seeded generator and keeps its slice
  (`shard`): rank r of W trains on rows ``r*B/W .. (r+1)*B/W``, so the global batch is exactly the
  single-process batch (``batch_size`` must divide by W);
* after ``backward`` the gradients are averaged over ranks (`average_gradients`), the arithmetic of
  PyTorch's ``DistributedDataParallel`` (Li et al., 2020): g = (1/W) sum_r g_r. It is done
  explicitly because the losses take the ``transformers`` model itself (a DDP wrapper is not one);
  parameters are broadcast from rank 0 once at the start, as DDP does;
* the logged loss is the mean over ranks (`mean_over_ranks`), and only rank 0 writes checkpoints
  and shows a progress bar (`is_main`).

For a loss that is a mean over equally many tokens per row (``"ar"`` on a packed corpus) this is
the single-process computation up to float rounding; the noising objectives draw each rank's noise
from its own slice of the stream, so their losses match the single-process run in distribution.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment; ``(0, 1, 0)`` without."""
    def read(name: str, default: int) -> int:
        text = os.environ.get(name, "").strip()
        if not text:
            return default
        if not text.isdigit():
            raise ValueError(f"{name} must be a non-negative int (set by torchrun), got {text!r}")
        return int(text)

    size = read("WORLD_SIZE", 1)
    if size < 1:
        raise ValueError(f"WORLD_SIZE must be >= 1, got {size}")
    return read("RANK", 0), size, read("LOCAL_RANK", 0)


def active() -> bool:
    """True under torchrun with more than one process."""
    return world()[1] > 1


def is_main() -> bool:
    """Rank 0 (or a plain single process): the one that writes checkpoints and logs."""
    return world()[0] == 0


def setup(device: torch.device) -> torch.device:
    """Join the process group once (NCCL on CUDA, gloo otherwise); return this rank's device."""
    if not active():
        return device
    rank, size, local = world()
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank,
                                world_size=size)
    return device


def broadcast_parameters(model) -> None:
    """Every rank starts from rank 0's weights (as ``DistributedDataParallel`` does)."""
    if active():
        for p in model.state_dict().values():
            dist.broadcast(p, src=0)


def shard(batch: torch.Tensor) -> torch.Tensor:
    """This rank's contiguous slice of the global batch (rows ``r*B/W .. (r+1)*B/W``)."""
    rank, size, _ = world()
    if size == 1:
        return batch
    if batch.shape[0] % size:
        raise ValueError(f"batch_size={batch.shape[0]} must be divisible by the {size} processes "
                         "(WORLD_SIZE) so that every rank gets an equal slice")
    per = batch.shape[0] // size
    return batch[rank * per:(rank + 1) * per]


def average_gradients(model) -> None:
    """g <- (1/W) sum_r g_r over ranks, in one flat all-reduce."""
    if not active():
        return
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world()[1]
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def mean_over_ranks(value: torch.Tensor) -> torch.Tensor:
    """The mean of a scalar over ranks (the loss a single process would log)."""
    if not active():
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / world()[1]
