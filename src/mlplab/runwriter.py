"""Writing a run folder, its history and the lines that describe a run.

:class:`RunFolderWriter` writes every file of a run folder in one atomic commit (``runfolder.py``), mid-way
for resumable checkpoints and at the end with the final metrics; the history is plain per-epoch dicts
as JSON (NaN and infinities as null, which JSON lacks).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .checkpoint import (
    CHECKPOINT_NAME,
    CheckpointError,
    checkpoint_bytes,
    snapshots_bytes,
    state_dict_bytes,
)
from .config import Config, to_toml
from .data import Dataset
from .inference import infer
from .metrics import confusion_matrix
from .model import MLP, OUTPUT_FUNCTIONS
from .runfolder import RunFolder, commit, old_run_files
from .training import (
    EarlyStopping,
    TrainingState,
)

__all__ = ["HISTORY_NAME", "RunFolderWriter", "describe_architecture", "describe_training", "history_json",
           "read_history"]


@dataclass
class RunFolderWriter:
    """Writes the run folder: mid-way (resumable checkpoints) and at the end (with final metrics)."""

    folder: RunFolder | Path | None  # a plain Path: a folder this process owns (a temporary one), no lock
    config: Config
    dataset: Dataset
    stopper: EarlyStopping | None
    initial_test_loss: float | None

    def meta(self, state: TrainingState, metrics: dict[str, Any] | None) -> dict[str, Any]:
        model, dataset = state.model, self.dataset
        return {
            "mlplab_version": __version__,
            "torch_version": torch.__version__.split("+")[0],
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "task": dataset.task,
            "classes": dataset.classes,
            "architecture": {"n_inputs": model.sizes[0], "hidden_sizes": model.sizes[1:-1],
                             "n_outputs": model.sizes[-1], "activation": model.activation_name,
                             "dropout": self.config.model.dropout, "output": OUTPUT_FUNCTIONS[dataset.task],
                             "dtype": self.config.model.dtype},
            "preprocessor": dataset.preprocessor.to_dict(),
            "target_scaling": dataset.target.scaling,
            "data": dataset.source,
            "config": self.config.to_dict(),
            "epoch": state.epoch,
            "train_seconds": round(state.seconds, 4),
            "complete": metrics is not None,
            "stop_reason": state.stop_reason,
            "best_epoch": state.best_epoch,
            "initial_test_loss": self.initial_test_loss,
            "metrics": _finite(metrics or {}),
            "confusion_matrix": self._confusion(state.model) if metrics is not None else None,
        }

    def _confusion(self, model: MLP) -> list[list[int]] | None:
        if self.dataset.task == "regression" or self.dataset.x_test is None:
            return None
        predicted = infer(model, self.dataset.x_test, self.dataset.task).indices
        return confusion_matrix(self.dataset.y_test, predicted, len(self.dataset.classes)).tolist()

    def save(self, state: TrainingState, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write every file of the run folder in one atomic commit; returns the meta."""
        meta = self.meta(state, metrics)
        if self.folder is None:
            return meta
        training_state = {
            "epoch": state.epoch,
            "seconds": state.seconds,
            "history_epochs": len(state.history),  # the history itself is history.json, written first
            "optimizer": state.optimizer.state_dict(),
            "scheduler": state.scheduler.state_dict() if state.scheduler is not None else {},
            "generator": state.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "best_epoch": state.best_epoch,
            "early_stopping": self.stopper.state_dict() if self.stopper else {},
        }
        weights = state.model.state_dict()
        files = {CHECKPOINT_NAME: checkpoint_bytes(weights, meta, training_state),
                 "model.pt": state_dict_bytes(weights),
                 # compact, one pass of the C encoder: indent=1 took the pure-Python encoder, ~17 µs an epoch
                 HISTORY_NAME: history_json(state.history).encode(),
                 "config.toml": to_toml(self.config).encode(),
                 "run.json": json.dumps(meta, indent=2).encode()}
        if state.snapshots:
            files["snapshots.pt"] = snapshots_bytes(state.snapshots)
        if isinstance(self.folder, RunFolder):
            self.folder.commit(files, final=metrics is not None)
        else:
            commit(self.folder, files, remove=old_run_files(Path(self.folder)))
        return meta


HISTORY_NAME = "history.json"


def history_json(history: list[dict[str, Any]]) -> str:
    """The history as compact JSON in one pass of the C encoder; non-finite numbers (rare: a diverged
    run) become null in a second, only then."""
    try:
        return json.dumps(history, allow_nan=False, separators=(",", ":"))
    except ValueError:
        return json.dumps(_finite(history), separators=(",", ":"))


def read_history(run_dir: Path, saved: dict[str, Any]) -> list[dict[str, Any]]:
    """The history a resumable checkpoint goes with: its first ``history_epochs`` records from
    history.json (checkpoints of earlier mlplab versions carry their own copy)."""
    if "history" in saved:
        return json.loads(saved["history"])
    expected = int(saved.get("history_epochs", saved["epoch"]))
    folder = run_dir if run_dir.is_dir() else run_dir.parent  # a run folder, or its checkpoint.pt
    try:
        history = json.loads((folder / HISTORY_NAME).read_text())
    except (OSError, ValueError):
        history = None
    if not isinstance(history, list) or len(history) < expected:
        raise CheckpointError(f"{folder / HISTORY_NAME} is missing or shorter than the checkpoint's "
                              f"{expected} epochs; the run cannot be resumed exactly")
    return history[:expected]


def _finite(values: Any) -> Any:
    """JSON has no NaN: write non-finite numbers as null."""
    if isinstance(values, dict):
        return {key: _finite(value) for key, value in values.items()}
    if isinstance(values, list):
        return [_finite(value) for value in values]
    if isinstance(values, float) and not math.isfinite(values):
        return None
    return values


def describe_architecture(model: MLP, task: str) -> str:
    hidden = " -> ".join(f"{size} ({model.activation_name})" for size in model.sizes[1:-1])
    return " -> ".join(part for part in (str(model.sizes[0]), hidden,
                                         f"{model.sizes[-1]} ({OUTPUT_FUNCTIONS[task]})") if part)


def describe_training(config: Config, task: str | None = None) -> str:
    """One line of the settings that shape training; the tutorial's keeps its three parts, and every
    other setting is named only when it is on (so a data file's defaults all show)."""
    training, data = config.training, config.data
    batch = "full batch" if training.batch_size is None else f"batch {training.batch_size}"
    epochs = f"up to {training.epochs}" if training.early_stopping else str(training.epochs)
    parts = [f"{training.optimizer} lr {training.learning_rate:g}", f"{epochs} epochs", batch]
    if training.weight_decay:
        parts.append(f"weight decay {training.weight_decay:g}")
    if training.early_stopping:
        parts.append(f"early stopping on {data.val_fraction:g} validation (patience {training.patience}, "
                     "best weights kept)")
    if data.scale != "none":
        parts.append(f"features scaled ({data.scale})")
    if data.scale_target and task in (None, "regression"):  # it applies to a regression target only
        parts.append("regression target standardised")
    return ", ".join(parts)
