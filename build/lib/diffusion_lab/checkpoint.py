"""Training checkpoints that survive a Colab disconnect: model, optimizer, RNG and history.

A checkpoint is a folder ``step-000120/`` holding

* the model, written with ``save_pretrained`` (``model.safetensors`` + ``config.json``);
* ``trainer.safetensors``: every optimizer state tensor and the data/noise generator state;
* ``trainer.json``: the step, the optimizer's param groups and the history so far.

Nothing is pickled, so loading a checkpoint cannot run code.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

PREFIX = "step-"


def save_checkpoint(folder: Path, step: int, model, optimizer, generator: torch.Generator,
                    history: dict, keep: int = 2) -> Path:
    """Write ``folder/step-NNNNNN`` atomically (temp name, then rename); keep the newest
    ``keep``."""
    folder = Path(folder)
    final = folder / f"{PREFIX}{step:06d}"
    tmp = folder / f".tmp-{PREFIX}{step:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp, safe_serialization=True)
    state = optimizer.state_dict()
    tensors = {"generator": generator.get_state()}
    for idx, slots in state["state"].items():
        for key, value in slots.items():
            tensors[f"opt.{idx}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    save_file(tensors, str(tmp / "trainer.safetensors"))
    meta = {"step": step, "param_groups": state["param_groups"], "history": history}
    (tmp / "trainer.json").write_text(json.dumps(meta))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in sorted(folder.glob(f"{PREFIX}*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint in ``folder``, or None."""
    done = [p for p in sorted(Path(folder).glob(f"{PREFIX}*")) if (p / "trainer.json").is_file()]
    return done[-1] if done else None


def load_checkpoint(path: Path, model, optimizer, generator: torch.Generator) -> tuple[int, dict]:
    """Restore model, optimizer and generator in place; return ``(step, history)``."""
    from safetensors.torch import load_model

    path = Path(path)
    load_model(model, str(path / "model.safetensors"), strict=False,
               device=str(next(model.parameters()).device))
    meta = json.loads((path / "trainer.json").read_text())
    tensors = load_file(str(path / "trainer.safetensors"))
    generator.set_state(tensors.pop("generator"))
    device = next(model.parameters()).device
    opt_state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        _, idx, key = name.split(".", 2)
        value = value if key == "step" else value.to(device)
        opt_state.setdefault(int(idx), {})[key] = value
    optimizer.load_state_dict({"state": opt_state, "param_groups": meta["param_groups"]})
    return meta["step"], meta["history"]
