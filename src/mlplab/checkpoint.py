"""Save and load checkpoints: self-describing, checksummed, validated, and never unpickling objects.

A checkpoint is one ``torch.save`` file holding only tensors and plain data::

    {"format": "mlplab-checkpoint", "version": 2,
     "meta": "<JSON: architecture, task, classes, preprocessing, config, metrics, versions, ...>",
     "sha256": "<hex digest of the meta text and every weight tensor>",
     "weights": {"linear_1.weight": tensor, ...},
     "training_state": {optimizer, scheduler, RNG states, history, ...}}   # for --resume

It is read back with ``torch.load(weights_only=True)``, which refuses anything but tensors and
containers of primitives. ``sha256`` covers the description as well as the weights, so a flipped byte
in a class label or a scaling offset is caught like one in a weight (format 1 checked the weights only,
and is still read). The description is then checked against its schema and the tensors' shapes
(:mod:`mlplab.schema`) before any network is built. Files are read only if they are regular files
under a size cap. Every write goes to a temporary file that is fsynced, then renamed over the target,
so a crash mid-save leaves the old file or the new one; a run folder's files change together, in one
commit (:mod:`mlplab.runfolder`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import torch

from .runfolder import file_mode, readable, resolve
from .saferead import UnreadableFile, open_regular
from .schema import CheckpointError, check_meta, check_weights

__all__ = ["Checkpoint", "CheckpointError", "atomic_write", "load_checkpoint", "load_state_dict",
           "save_checkpoint", "save_state_dict"]

FORMAT = "mlplab-checkpoint"
VERSION = 2
CHECKPOINT_NAME = "checkpoint.pt"


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
            os.chmod(temporary, file_mode())  # the user's umask, not the temporary file's 0600
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


def full_digest(meta_text: str, weights_sha256: str) -> str:
    """The checksum of a checkpoint: its description's text and the digest of every weight tensor."""
    return hashlib.sha256(meta_text.encode("utf-8") + weights_sha256.encode()).hexdigest()


def checkpoint_bytes(weights: dict[str, torch.Tensor], meta: dict[str, Any],
                     training_state: dict[str, Any] | None = None) -> bytes:
    """A checkpoint serialised in memory (a run folder commits it with its other files at once)."""
    weights = {name: plain_copy(tensor) for name, tensor in weights.items()}
    digest = weights_digest(weights)
    meta_text = json.dumps({**meta, "weights_sha256": digest})
    payload = {"format": FORMAT, "version": VERSION, "meta": meta_text, "sha256": full_digest(meta_text, digest),
               "weights": weights, "training_state": training_state or {}}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def save_checkpoint(path: str | Path, weights: dict[str, torch.Tensor], meta: dict[str, Any],
                    training_state: dict[str, Any] | None = None) -> None:
    data = checkpoint_bytes(weights, meta, training_state)  # serialise fully before touching the disk
    atomic_write(path, lambda handle: handle.write(data))


def torch_load(path: str | Path, what: str) -> Any:
    """``torch.load(weights_only=True)`` of a regular file under the size cap, with one-line errors. A
    file in a run folder is read as the folder's last complete commit has it."""
    path = Path(path)
    where = resolve(path)
    if where is None:
        raise CheckpointError(f"{what} {str(path)!r} does not exist")
    try:
        handle = open_regular(where, what)
    except UnreadableFile as error:
        raise CheckpointError(str(error)) from None
    with handle:
        try:
            return torch.load(handle, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            if "global" in str(error).lower():  # the weights_only unpickler met a class or function
                raise CheckpointError(f"{path} holds Python objects besides tensors and plain data; mlplab refuses "
                                      "to load it, because unpickling such objects could run arbitrary code") \
                    from None
            raise CheckpointError(f"{path} is not a readable {what}: truncated, corrupt or another kind of "
                                  "file") from None
        except Exception:  # zip and format errors all mean the same to a user
            raise CheckpointError(f"{path} is not a readable {what}: truncated, corrupt or another kind of "
                                  "file") from None


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint file, or the ``checkpoint.pt`` inside a run folder, verify its checksum and
    check its description against the schema and the weights."""
    path = Path(path)
    if path.is_dir():
        if not readable(path / CHECKPOINT_NAME):
            raise CheckpointError(f"{path} holds no {CHECKPOINT_NAME}; is it an mlplab run folder?")
        path = path / CHECKPOINT_NAME
    payload = torch_load(path, "mlplab checkpoint")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an mlplab checkpoint (a plain state_dict? use "
                              "`mlplab predict --state-dict FILE`)")
    version = payload.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{path} is a damaged mlplab checkpoint (format version {version!r})")
    if version > VERSION:
        raise CheckpointError(f"{path} was written by a newer mlplab (format {version}); upgrade mlplab to read it")
    meta_text, weights = payload.get("meta"), payload.get("weights")
    if not isinstance(meta_text, str) or not isinstance(weights, dict) or not all(
            isinstance(name, str) and isinstance(tensor, torch.Tensor) for name, tensor in weights.items()):
        raise CheckpointError(f"{path} is a damaged mlplab checkpoint (its description or weights are unreadable)")
    digest = weights_digest(weights)
    if version >= 2 and full_digest(meta_text, digest) != payload.get("sha256"):
        raise CheckpointError(f"{path} is corrupt: its description or weights do not match the checksum saved "
                              "with them")
    try:
        meta = json.loads(meta_text)
    except ValueError:
        raise CheckpointError(f"{path} is a damaged mlplab checkpoint (its description is not JSON)") from None
    if not isinstance(meta, dict) or digest != meta.get("weights_sha256"):
        raise CheckpointError(f"{path} is corrupt: its weights do not match the checksum saved with them")
    sizes = check_meta(meta, str(path))
    from .model import ACTIVATIONS

    if meta["architecture"]["activation"] not in ACTIVATIONS:
        raise CheckpointError(f"{path} has an invalid description: architecture.activation must be one of "
                              f"{', '.join(ACTIVATIONS)}, got {meta['architecture']['activation']!r}")
    check_weights(sizes, meta["architecture"].get("dtype", "float32"),
                  {name: (tuple(tensor.shape), str(tensor.dtype).replace("torch.", ""))
                   for name, tensor in weights.items()}, str(path))
    training_state = payload.get("training_state") or {}
    if not isinstance(training_state, dict):
        raise CheckpointError(f"{path} is a damaged mlplab checkpoint (its training state is unreadable)")
    return Checkpoint(weights, meta, training_state)


def state_dict_bytes(state_dict: dict[str, torch.Tensor]) -> bytes:
    """A plain ``torch.save(model.state_dict())`` file's bytes, as the tutorial writes it."""
    buffer = io.BytesIO()
    torch.save({name: plain_copy(tensor) for name, tensor in state_dict.items()}, buffer)
    return buffer.getvalue()


def save_state_dict(path: str | Path, state_dict: dict[str, torch.Tensor]) -> None:
    """A plain state_dict file, written atomically."""
    data = state_dict_bytes(state_dict)
    atomic_write(path, lambda handle: handle.write(data))


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a plain state_dict (name -> tensor) safely; anything else is a CheckpointError."""
    path = Path(path)
    values = torch_load(path, "state_dict")
    if isinstance(values, dict) and values.get("format") == FORMAT:
        values = values["weights"]  # an mlplab checkpoint carries a state_dict too
    if not isinstance(values, dict) or not values or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in values.items()):
        raise CheckpointError(f"{path} is not a state_dict (a mapping of parameter names to tensors)")
    return values


def snapshots_bytes(snapshots: list[dict[str, Any]]) -> bytes:
    buffer = io.BytesIO()
    torch.save(snapshots, buffer)
    return buffer.getvalue()


def load_snapshots(path: str | Path, weights: dict[str, torch.Tensor]) -> list[dict[str, Any]]:
    """The weight snapshots of a run (``snapshots.pt``: a list of ``{"epoch": int, "weights": state_dict}``),
    each checked to have exactly the names, shapes and dtypes of ``weights``; [] when there is none."""
    path = Path(path)
    if not readable(path):
        return []
    snapshots = torch_load(path, "snapshots file")

    def fits(snapshot: Any) -> bool:
        if not isinstance(snapshot, dict) or not isinstance(snapshot.get("epoch"), int):
            return False
        saved = snapshot.get("weights")
        return isinstance(saved, dict) and saved.keys() == weights.keys() and all(
            isinstance(saved[name], torch.Tensor) and saved[name].shape == tensor.shape
            and saved[name].dtype == tensor.dtype for name, tensor in weights.items())

    if not isinstance(snapshots, list) or not all(map(fits, snapshots)):
        raise CheckpointError(f"{path} is a damaged snapshots file: expected a list of epochs and weights shaped "
                              "like the run's network")
    return snapshots
