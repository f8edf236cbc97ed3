"""A run in public steps: :class:`RunSetup` (what trains, where it writes), then :func:`prepare`
(tensors, splits), :func:`standard_callbacks`, :func:`fit_run` and :func:`finalise` (final metrics, the
run folder, the :class:`RunResult`); :func:`train_and_save` does the four in order. ``run.train``,
``run.resume`` and the estimators' ``fit_dataset`` only build the setup: a web app, a sweep or a
data-parallel worker can call the steps with its own callbacks or step in between.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import fastpath
from .checkpoint import plain_copy
from .config import Config
from .data import Dataset
from .inference import TrainedModel
from .interrupt import StopOnSignal, TrainingInterrupted, stop_signals
from .model import MLP, build_mlp
from .progress import Progress
from .runfolder import RunFolder
from .runwriter import RunFolderWriter, describe_architecture, describe_training
from .training import (
    Callback,
    EarlyStopping,
    Every,
    StepFunction,
    TrainingState,
    autograd_step,
    build_optimizer,
    build_scheduler,
    fit,
    score_split,
)

__all__ = ["RunResult", "RunSetup", "TrainingData", "finalise", "fit_run", "new_training_state", "prepare",
           "standard_callbacks", "train_and_save", "training_step"]


@dataclass
class RunResult:
    """What :func:`train` returns: the model, its per-epoch history, final metrics and run folder."""

    model: TrainedModel
    history: list[dict[str, Any]]
    metrics: dict[str, dict[str, float]]
    config: Config
    path: Path | None
    initial_test_loss: float | None
    stop_reason: str | None = None


def _build_module(config: Config, dataset: Dataset) -> MLP:
    n_outputs = len(dataset.classes) if dataset.task == "multiclass" else 1
    return build_mlp({"n_inputs": dataset.preprocessor.n_inputs, "hidden_sizes": config.model.hidden_sizes,
                      "n_outputs": n_outputs, "activation": config.model.activation,
                      "dropout": config.model.dropout, "dtype": config.model.dtype}, config.model.init)


def new_training_state(module: MLP, config: Config) -> TrainingState:
    """A fresh optimiser (the fast path's NumPy one where :func:`fastpath.refusal` allows it) and scheduler
    for ``module``."""
    device = next(module.parameters()).device
    if fastpath.refusal(config, device) is None:
        optimizer = fastpath.build_optimizer(module, config.training)
    else:
        optimizer = build_optimizer(module, config.training)
    return TrainingState(module, optimizer, build_scheduler(optimizer, config.training),
                         torch.Generator().manual_seed(config.seed))


def training_step(state: TrainingState, config: Config, task: str, x_train: torch.Tensor,
                  y_train: torch.Tensor) -> StepFunction:
    """The step function ``fit`` runs for ``state``: the NumPy fast path when the state's optimiser is one
    of the fast path's (which :func:`new_training_state` chose from ``fastpath.refusal``), else autograd."""
    if isinstance(state.optimizer, fastpath.NumpyOptimizer):
        return fastpath.numpy_step(state.model, state.optimizer, x_train, y_train, task)
    return autograd_step(state.model, state.optimizer, task, config.training)


def _tensors(x: np.ndarray, y: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows as tensors; float targets (binary, regression) in the features' precision. Read-only arrays
    (a memory map, say) are copied: torch tensors are writable."""
    x_tensor, y_tensor = (torch.from_numpy(array if array.flags.writeable else array.copy()) for array in (x, y))
    if y_tensor.is_floating_point():
        y_tensor = y_tensor.to(x_tensor.dtype)
    return x_tensor.to(device), y_tensor.to(device)


@dataclass
class RunSetup:
    """What one run trains and where it writes: made by :func:`train`, :func:`resume` and
    :func:`fit_dataset`, then taken through the steps :func:`prepare`, :func:`standard_callbacks`,
    :func:`fit_run` and :func:`finalise` (:func:`train_and_save` does all four)."""

    config: Config
    dataset: Dataset
    state: TrainingState
    device: torch.device
    folder: RunFolder | Path | None = None  # None: nothing is written (the estimators, other DDP ranks)
    initial_test_loss: float | None = None  # known already when resuming
    early_stopping_state: dict[str, Any] = field(default_factory=dict)

    @property
    def run_dir(self) -> Path | None:
        return self.folder.root if isinstance(self.folder, RunFolder) else self.folder


@dataclass
class TrainingData:
    """Step 1's result: the splits as tensors on the training device, and the row weights."""

    splits: dict[str, tuple[torch.Tensor, torch.Tensor]]
    weight: torch.Tensor | None
    n_classes: int | None

    @property
    def eval_set(self) -> tuple[str, torch.Tensor, torch.Tensor] | None:
        """What ``fit`` scores every epoch: the validation split, else the test split, else nothing."""
        name = "val" if "val" in self.splits else "test" if "test" in self.splits else None
        return (name, *self.splits[name]) if name else None


def prepare(setup: RunSetup) -> TrainingData:
    """Step 1: the dataset's splits as tensors on the device, and (for a new run) the test loss before
    training, which the tutorial prints."""
    dataset, device = setup.dataset, setup.device
    splits = {"train": _tensors(dataset.x_train, dataset.y_train, device)}
    if dataset.x_val is not None:
        splits["val"] = _tensors(dataset.x_val, dataset.y_val, device)
    n_classes = len(dataset.classes) if dataset.classes else None
    if dataset.x_test is not None:
        splits["test"] = _tensors(dataset.x_test, dataset.y_test, device)
        if setup.initial_test_loss is None:
            setup.initial_test_loss = score_split(setup.state.model, *splits["test"], dataset.task, n_classes)["loss"]
    weight = None if dataset.weight is None else torch.from_numpy(dataset.weight).to(device)
    return TrainingData(splits, weight, n_classes)


def standard_callbacks(setup: RunSetup, verbose: bool) -> tuple[list[Callback], RunFolderWriter]:
    """Step 2: mlplab's own callbacks, in order: the progress lines (``verbose``), early stopping,
    periodic checkpoints (when writing a folder), weight snapshots; and the folder's writer."""
    training = setup.config.training
    stopper = EarlyStopping(training.patience) if training.early_stopping else None
    if stopper and setup.early_stopping_state:
        stopper.load_state_dict(setup.early_stopping_state)
    writer = RunFolderWriter(setup.folder, setup.config, setup.dataset, stopper, setup.initial_test_loss)
    callbacks: list[Callback] = [Progress(training.epochs, training.log_every)] if verbose else []
    callbacks += [stopper] if stopper else []
    if setup.folder is not None and training.checkpoint_every:
        callbacks.append(Every(training.checkpoint_every, writer.save))
    if training.snapshot_every:
        callbacks.append(Every(training.snapshot_every, _record_snapshot))
    return callbacks, writer


def fit_run(setup: RunSetup, data: TrainingData, callbacks: list[Callback], writer: RunFolderWriter,
            handle_signals: bool = False) -> None:
    """Step 3: ``fit`` with the run's step function (:func:`training_step`). With ``handle_signals``
    (and a folder), SIGINT/SIGTERM stop after the epoch, save a resumable checkpoint and raise
    :class:`~mlplab.interrupt.TrainingInterrupted`. A diverged run raises ``TrainingDiverged`` from fit:
    its last periodic checkpoint (if any) stays as it was committed."""
    config, dataset, state = setup.config, setup.dataset, setup.state
    x_train, y_train = data.splits["train"]
    with stop_signals(handle_signals and setup.folder is not None) as flag:
        stop = StopOnSignal(flag, writer.save)
        fit(state, x_train, y_train, config.training, dataset.task, n_classes=data.n_classes,
            callbacks=[*callbacks, stop], eval_set=data.eval_set, weight=data.weight,
            step=training_step(state, config, dataset.task, x_train, y_train))
    if stop.stopped_at is not None:
        raise TrainingInterrupted(flag.signal_number, stop.stopped_at, config.training.epochs, setup.run_dir)


def finalise(setup: RunSetup, data: TrainingData, writer: RunFolderWriter,
             score_training_rows: bool = True) -> RunResult:
    """Step 4: the final metrics of every split (chunked, through the one inference path), the run
    folder written in one commit, and the :class:`RunResult`."""
    dataset, state = setup.dataset, setup.state
    metrics = {name: score_split(state.model, x, y, dataset.task, data.n_classes)
               for name, (x, y) in data.splits.items()
               if name != "train" or (score_training_rows and "shard" not in dataset.source)}  # a shard is not all rows
    meta = writer.save(state, metrics)
    model = TrainedModel(state.model.eval(), dataset.task, dataset.classes, dataset.preprocessor, meta)
    return RunResult(model, state.history, metrics, setup.config, setup.run_dir, setup.initial_test_loss,
                     state.stop_reason)


def train_and_save(setup: RunSetup, *, verbose: bool = False, callbacks: list[Callback] = (),
                   score_training_rows: bool = True, handle_signals: bool = False) -> RunResult:
    """The four steps in order; ``callbacks`` run after mlplab's own. ``verbose`` prints what the CLI
    shows before training: the data, the model and the settings, and the tutorial's initial test loss."""
    data = prepare(setup)
    if verbose:
        print(setup.dataset.describe())
        print(f"model: {describe_architecture(setup.state.model, setup.dataset.task)}; "
              f"{describe_training(setup.config, setup.dataset.task)}")
        if setup.state.epoch == 0 and setup.initial_test_loss is not None:
            print(f"Before training, test loss is {setup.initial_test_loss:.6f}")
    own, writer = standard_callbacks(setup, verbose)
    fit_run(setup, data, [*own, *callbacks], writer, handle_signals)
    return finalise(setup, data, writer, score_training_rows)


def _record_snapshot(state: TrainingState) -> None:
    weights = {name: plain_copy(tensor) for name, tensor in state.model.state_dict().items()}
    state.snapshots.append({"epoch": state.epoch, "weights": weights})
