"""Save and load checkpoints: self-describing, atomic, and never unpickling arbitrary objects.

A checkpoint is one ``torch.save`` file holding only tensors and plain data::

    {"format": "mlplab-checkpoint", "version": 1,
     "meta": "<JSON: architecture, task, classes, preprocessing, config, metrics, versions, ...>",
     "weights": {"linear_1.weight": tensor, ...},
     "training_state": {optimizer, scheduler, RNG states, history, ...}}   # for --resume

It is read back with ``torch.load(weights_only=True)``, which refuses anything but tensors and
containers of primitives, and ``meta["weights_sha256"]`` catches a flipped byte in the weights. Every
write goes to a temporary file in the same folder, is fsynced, then renamed over the target, so a
crash mid-save leaves the old file or the new one, never a truncated one.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import torch

from .config import MlplabError

__all__ = ["Checkpoint", "CheckpointError", "atomic_write", "load_checkpoint", "load_state_dict",
           "save_checkpoint", "save_state_dict"]

FORMAT = "mlplab-checkpoint"
VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"


class CheckpointError(MlplabError):
    """A file is missing, not a checkpoint, from a newer mlplab, truncated or corrupt."""


@dataclass
class Checkpoint:
    weights: dict[str, torch.Tensor]
    meta: dict[str, Any]
    training_state: dict[str, Any] = field(default_factory=dict)


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` through ``write(handle)`` into a temporary sibling, fsync, then rename it over."""
    path = Path(path)
    temporary = None
    try:
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp",
                                         delete=False) as handle:
            temporary = handle.name
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def weights_digest(weights: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(weights):
        tensor = weights[name].detach().cpu()
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.numpy().tobytes())  # C order, whatever the strides
    return digest.hexdigest()


def plain_copy(tensor: torch.Tensor) -> torch.Tensor:
    """A CPU copy with its own storage and standard strides (the fast path leaves views of one buffer)."""
    return tensor.detach().cpu().clone(memory_format=torch.contiguous_format)


def save_checkpoint(path: str | Path, weights: dict[str, torch.Tensor], meta: dict[str, Any],
                    training_state: dict[str, Any] | None = None) -> None:
    weights = {name: plain_copy(tensor) for name, tensor in weights.items()}
    meta = {**meta, "weights_sha256": weights_digest(weights)}
    payload = {"format": FORMAT, "version": VERSION, "meta": json.dumps(meta), "weights": weights,
               "training_state": training_state or {}}
    buffer = io.BytesIO()
    torch.save(payload, buffer)  # serialise fully before touching the disk
    atomic_write(path, lambda handle: handle.write(buffer.getvalue()))


def _torch_load(path: Path, what: str) -> Any:
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a {what} file")
    if not path.is_file():
        raise CheckpointError(f"{what} {str(path)!r} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # zip, unpickling and weights_only errors all mean the same to a user
        reason = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        raise CheckpointError(f"{path} is not a readable {what}: truncated, corrupt or another kind of "
                              f"file ({reason})") from None


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint file, or the ``checkpoint.pt`` inside a run folder."""
    path = Path(path)
    if path.is_dir():
        if not (path / CHECKPOINT_NAME).is_file():
            raise CheckpointError(f"{path} holds no {CHECKPOINT_NAME}; is it an mlplab run folder?")
        path = path / CHECKPOINT_NAME
    payload = _torch_load(path, "mlplab checkpoint")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an mlplab checkpoint (a plain state_dict? use "
                              "`mlplab predict --state-dict FILE`)")
    if not isinstance(payload.get("version"), int) or payload["version"] > VERSION:
        raise CheckpointError(f"{path} was written by a newer mlplab (format {payload.get('version')}); "
                              "upgrade mlplab to read it")
    try:
        meta = json.loads(payload["meta"])
        weights = payload["weights"]
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"{path} is a damaged mlplab checkpoint (its description is unreadable)") from None
    if weights_digest(weights) != meta.get("weights_sha256"):
        raise CheckpointError(f"{path} is corrupt: its weights do not match the checksum saved with them")
    return Checkpoint(weights, meta, payload.get("training_state") or {})


def save_state_dict(path: str | Path, state_dict: dict[str, torch.Tensor]) -> None:
    """A plain ``torch.save(model.state_dict())`` file, as the tutorial writes, but atomically."""
    buffer = io.BytesIO()
    torch.save({name: plain_copy(tensor) for name, tensor in state_dict.items()}, buffer)
    atomic_write(path, lambda handle: handle.write(buffer.getvalue()))


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a plain state_dict (name -> tensor) safely; anything else is a CheckpointError."""
    path = Path(path)
    values = _torch_load(path, "state_dict")
    if isinstance(values, dict) and values.get("format") == FORMAT:
        values = values["weights"]  # an mlplab checkpoint carries a state_dict too
    if not isinstance(values, dict) or not values or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in values.items()):
        raise CheckpointError(f"{path} is not a state_dict (a mapping of parameter names to tensors)")
    return values
