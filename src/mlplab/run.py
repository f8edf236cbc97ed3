"""A run: config -> data -> model -> fit -> run folder; and loading a trained model back.

This is the one place the CLI, the scikit-learn estimators and (later) the web server go through, so a
run made anywhere is saved, listed and reloaded the same way. A run folder holds::

    checkpoint.pt   weights + self-describing meta + training state (for --resume)
    model.pt        plain state_dict with the tutorial's keys (linear_1.weight, ...)
    history.json    one dict per epoch
    config.toml     the resolved config; `mlplab train --config` reads it back
    run.json        the checkpoint's meta as readable JSON (what `mlplab runs` lists)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__, fastpath
from .checkpoint import (
    CHECKPOINT_NAME,
    Checkpoint,
    CheckpointError,
    checkpoint_bytes,
    load_checkpoint,
    load_snapshots,
    plain_copy,
    snapshots_bytes,
    state_dict_bytes,
)
from .config import Config, ConfigError, MlplabError, to_toml, with_absolute_paths
from .data import Dataset, describe_data_source, file_digest, load_dataset
from .inference import TrainedModel, infer, load
from .interrupt import StopOnSignal, TrainingInterrupted, stop_signals
from .metrics import confusion_matrix
from .model import MLP, OUTPUT_FUNCTIONS, build_mlp
from .preprocess import DataError
from .progress import Progress
from .resources import checkpoint_bytes_estimate
from .runfolder import RunFolder, RunFolderError, commit, old_run_files, pending_folder
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
    resolve_device,
    score_split,
)

__all__ = ["RunResult", "TrainedModel", "load", "resume", "train"]  # TrainedModel, load: from inference.py


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


Run = RunResult  # the name before 0.2; kept so code written against it still works

RUNS_ROOT = Path("runs")  # where a run without ``out`` goes: RUNS_ROOT/<data set>-<time>


def train(config: Config | None = None, *, out: str | Path | None = None, save: bool = True,
          force: bool = False, verbose: bool = False, callbacks: list[Callback] = (),
          handle_signals: bool = False, runs_root: str | Path = RUNS_ROOT) -> RunResult:
    """Train a network as ``config`` says and (unless ``save=False``) write a run folder.

    ``out`` is the run folder (default ``<runs_root>/<data set>-<time>``). It must be new, empty, or hold an
    mlplab run, which is replaced only with ``force``, and only once the new run is complete; two
    trainings cannot write one folder at once. ``verbose`` prints what the CLI shows (the loss every
    ``log_every`` epochs, a live bar on a terminal); ``callbacks`` run after mlplab's own. With
    ``handle_signals``, SIGINT/SIGTERM stop training after the current epoch, save a resumable
    checkpoint and raise :class:`~mlplab.interrupt.TrainingInterrupted`. The global torch random state
    is left as it was (the run seeds its own, in ``torch.random.fork_rng``), so a server or a sweep
    calling this is not disturbed. With the default config this is the tutorial, start to finish.

    Examples
    --------
    >>> import mlplab
    >>> result = mlplab.train(mlplab.Config.from_dict({"training": {"epochs": 300}}), save=False)
    >>> result.path is None, len(result.history), sorted(result.metrics)
    (True, 300, ['test', 'train'])
    """
    # The run records its data files by absolute path, so its config.toml repeats it from any folder.
    config = with_absolute_paths(as_config(config).validate())
    device = resolve_device(config.training.device)
    dataset = load_dataset(config)
    check_fits(config, dataset)
    folder = _claim_folder(out, config, dataset, force, Path(runs_root)) if save else None
    with _own_random_state(device):
        torch.manual_seed(config.seed)  # before the layers are made: the seed governs the initial weights
        module = _build_module(config, dataset).to(device)
        state = new_training_state(module, config)
        return _in_folder(folder, lambda: _train_and_save(config, dataset, state, folder, device, verbose,
                                                          list(callbacks), {}, handle_signals=handle_signals))


def _own_random_state(device: torch.device) -> contextlib.AbstractContextManager:
    """``torch.random.fork_rng`` over the CPU generator and, on a GPU, that device's: what the run seeds
    and draws is put back as it was when the run ends."""
    devices = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    return torch.random.fork_rng(devices=devices)


def as_config(config: Any) -> Config:
    """A Config as given, the defaults for None, or one built from a dict of settings."""
    if config is None:
        return Config()
    if isinstance(config, dict):
        return Config.from_dict(config)
    if not isinstance(config, Config):
        raise ConfigError("config", f"must be a mlplab.Config or a dict of settings, got {type(config).__name__}")
    return config


def check_fits(config: Config, dataset: Dataset) -> None:
    """Refuse, before allocating, a network too big for this machine's memory."""
    from .resources import check_network_fits

    n_outputs = len(dataset.classes) if dataset.task == "multiclass" else 1
    n_train = len(dataset.x_train)
    batch = n_train if config.training.batch_size is None else min(n_train, config.training.batch_size)
    evaluated = max(len(x) if x is not None else 0 for x in (dataset.x_val, dataset.x_test))
    check_network_fits([dataset.preprocessor.n_inputs, *config.model.hidden_sizes, n_outputs],
                       np.dtype(config.model.dtype).itemsize, config.training.optimizer, config.training.momentum,
                       max(batch, evaluated))


def resume(path: str | Path, *, epochs: int | None = None, verbose: bool = False,
           callbacks: list[Callback] = (), handle_signals: bool = False, save: bool = True) -> RunResult:
    """Continue the run in folder ``path`` from its last checkpoint, with the optimiser, scheduler and
    random-number states it saved, so the result equals a run never interrupted. ``epochs`` may raise
    the total number of epochs (never below those done). An interrupted ``force`` replacement is
    continued where it was, and replaces the old run when it completes. ``save=False`` writes nothing
    and claims no folder (the other ranks of a distributed run). The global torch random state is left
    as it was."""
    run_dir = Path(path)
    if not run_dir.is_dir():
        load_checkpoint(run_dir)  # the precise complaint: missing, or a file rather than a run folder
        raise CheckpointError(f"{run_dir} is a checkpoint file; --resume needs the run folder that holds it")
    folder = RunFolder.claim(run_dir, resume=True) if save else None
    random_state = contextlib.ExitStack()  # entered once the device is known; holds until training ends
    try:
        checkpoint = load_checkpoint(folder.where if folder else (pending_folder(run_dir) or run_dir))
        config, done = _resumed_config(checkpoint, run_dir, epochs)
        device = resolve_device(config.training.device)
        random_state.enter_context(_own_random_state(device))
        if config.data.path is not None and verbose:
            print(describe_data_source(checkpoint.meta.get("data") or {}, config.data.path))
        dataset = load_dataset(config)
        expected = checkpoint.meta.get("data", {}).get("sha256")
        if expected and expected != file_digest(config.data.path):
            raise DataError(f"{config.data.path} has changed since the run started; resume needs the same data")
        module = _build_module(config, dataset)
        module.load_state_dict(checkpoint.weights)
        module.to(device)
        state = new_training_state(module, config)
        _restore(state, checkpoint, folder.where if folder else (pending_folder(run_dir) or run_dir))
    except BaseException:
        random_state.close()
        if folder is not None:
            folder.release()
        raise
    with random_state:
        if verbose:
            print(f"Resuming {run_dir} at epoch {state.epoch} of {config.training.epochs}")
        return _in_folder(folder, lambda: _train_and_save(
            config, dataset, state, folder, device, verbose, list(callbacks),
            checkpoint.training_state.get("early_stopping") or {}, checkpoint.meta.get("initial_test_loss"),
            handle_signals=handle_signals))


def _resumed_config(checkpoint: Checkpoint, run_dir: Path, epochs: int | None) -> tuple[Config, int]:
    """The run's own config, with ``epochs`` raised if asked; refuses what cannot be continued."""
    if not checkpoint.training_state:
        raise CheckpointError(f"{run_dir} holds no training state to resume from")
    config = Config.from_dict(checkpoint.meta["config"])
    done = int(checkpoint.meta.get("epoch", 0))
    if epochs is not None:
        if epochs <= done:
            raise ConfigError("training.epochs", f"must be more than the {done} epochs {run_dir} has done already, "
                                                 f"got {epochs}")
        config.training.epochs = epochs
    elif checkpoint.meta.get("complete", False) or done >= config.training.epochs:
        raise MlplabError(f"{run_dir} is complete ({done} of {config.training.epochs} epochs); give --epochs N "
                          f"(more than {done}) to train it further")
    return config.validate(), done


def _restore(state: TrainingState, checkpoint: Checkpoint, where: Path) -> None:
    """Put back the optimiser, scheduler, RNG states, history and snapshots a checkpoint saved."""
    saved = checkpoint.training_state
    try:
        state.optimizer.load_state_dict(saved["optimizer"])
        if state.scheduler is not None and saved.get("scheduler"):
            state.scheduler.load_state_dict(saved["scheduler"])
        state.generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
        state.epoch, state.history = int(saved["epoch"]), read_history(where, saved)
        state.best_epoch, state.seconds = saved.get("best_epoch"), float(saved.get("seconds", 0.0))
    except (KeyError, TypeError, ValueError, RuntimeError):
        raise CheckpointError(f"{where}: the checkpoint's training state is damaged; it cannot be resumed") from None
    # keep the snapshots taken before the interruption
    recorded = load_snapshots(where / "snapshots.pt", checkpoint.weights)
    state.snapshots = [snapshot for snapshot in recorded if snapshot["epoch"] <= state.epoch]


def fit_dataset(config: Config, dataset: Dataset, *, state: TrainingState | None = None,
                verbose: bool = False, callbacks: list[Callback] = ()) -> tuple[Run, TrainingState]:
    """Train on a prepared :class:`~mlplab.data.Dataset`, writing no run folder: the entry the
    scikit-learn estimators use. ``state`` continues an earlier fit (warm start, partial_fit) up to
    ``config.training.epochs`` in all."""
    config.validate()
    device = resolve_device(config.training.device)
    if state is None:
        torch.manual_seed(config.seed)
        state = new_training_state(_build_module(config, dataset).to(device), config)
    # The estimators report their own scores: final metrics on every training row would only cost time.
    run = _train_and_save(config, dataset, state, None, device, verbose, list(callbacks), {},
                          score_training_rows=False)
    return run, state


# --- the steps ----------------------------------------------------------------------------------------

def _claim_folder(out: str | Path | None, config: Config, dataset: Dataset, force: bool,
                  root: Path = RUNS_ROOT) -> RunFolder:
    """Claim the run folder before training: refused, or found unwritable or too full, right now."""
    n_outputs = len(dataset.classes) if dataset.task == "multiclass" else 1
    sizes = [dataset.preprocessor.n_inputs, *config.model.hidden_sizes, n_outputs]
    snapshots = config.training.epochs // config.training.snapshot_every if config.training.snapshot_every else 0
    # room for the new files while the previous ones still exist (a commit replaces them at the end)
    needed = 2 * checkpoint_bytes_estimate(sizes, np.dtype(config.model.dtype).itemsize, config.training.optimizer,
                                           snapshots)
    return _claim(out, config, force, needed, root)


def _run_folder(out: str | Path | None, config: Config, force: bool) -> Path:
    """The folder a run will go to, checked now as ``train`` would check it (and not kept): for a launcher
    that hands the name to worker processes, one of which then claims it for the training."""
    folder = _claim(out, config, force, 0)
    folder.release(discard=True)
    return folder.root


def _claim(out: str | Path | None, config: Config, force: bool, needed: int, root: Path = RUNS_ROOT) -> RunFolder:
    if out is not None:
        return RunFolder.claim(out, force=force, needed_bytes=needed)
    name = Path(config.data.path).stem if config.data.path else config.data.dataset
    base = root / f"{name}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    for number in range(1, 1000):  # a fresh name; another process may take one at the same moment
        candidate = base if number == 1 else base.with_name(f"{base.name}-{number}")
        if not candidate.exists():
            try:
                return RunFolder.claim(candidate, needed_bytes=needed)
            except RunFolderError:
                if not candidate.exists():
                    raise
    raise RunFolderError(f"could not find a free run folder name next to {base}; pass --out")


def _in_folder(folder: RunFolder | None, work: Callable[[], RunResult]) -> RunResult:
    """Run ``work`` holding the folder's lock. On failure, what holds no saved state is removed: a
    folder this training created, or its unfinished replacement of an older run (kept on a signal,
    to be resumed). Periodic checkpoints already committed stay."""
    if folder is None:
        return work()
    try:
        result = work()
    except TrainingInterrupted:
        folder.release()
        raise
    except BaseException:
        folder.release(discard=True)
        raise
    folder.release()
    return result


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


def _train_and_save(config: Config, dataset: Dataset, state: TrainingState, folder: RunFolder | None,
                    device: torch.device, verbose: bool, extra: list[Callback],
                    early_stopping_state: dict[str, Any], initial_test_loss: float | None = None,
                    score_training_rows: bool = True, handle_signals: bool = False) -> RunResult:
    training = config.training
    run_dir = folder.root if isinstance(folder, RunFolder) else folder
    n_classes = len(dataset.classes) if dataset.classes else None
    x_train, y_train = _tensors(dataset.x_train, dataset.y_train, device)
    weight = None if dataset.weight is None else torch.from_numpy(dataset.weight).to(device)
    splits = {"train": (x_train, y_train)}
    if dataset.x_val is not None:
        splits["val"] = _tensors(dataset.x_val, dataset.y_val, device)
    if dataset.x_test is not None:
        splits["test"] = _tensors(dataset.x_test, dataset.y_test, device)
        if initial_test_loss is None:
            initial_test_loss = score_split(state.model, *splits["test"], dataset.task, n_classes)["loss"]
    eval_name = "val" if "val" in splits else "test" if "test" in splits else None
    if verbose:
        print(dataset.describe())
        print(f"model: {describe_architecture(state.model, dataset.task)}; {describe_training(config)}")
        if state.epoch == 0 and initial_test_loss is not None:
            print(f"Before training, test loss is {initial_test_loss:.6f}")

    stopper = EarlyStopping(training.patience) if training.early_stopping else None
    if stopper and early_stopping_state:
        stopper.load_state_dict(early_stopping_state)
    writer = RunFolderWriter(folder, config, dataset, stopper, initial_test_loss)
    callbacks: list[Callback] = [Progress(training.epochs, training.log_every)] if verbose else []
    callbacks += [stopper] if stopper else []
    if folder is not None and training.checkpoint_every:
        callbacks.append(Every(training.checkpoint_every, writer.save))
    if training.snapshot_every:
        callbacks.append(Every(training.snapshot_every, _record_snapshot))
    callbacks += extra

    # A diverged run raises TrainingDiverged from fit: its last periodic checkpoint (if any) stays as
    # it was committed, and nothing of the diverged epochs is written over it.
    with stop_signals(handle_signals and folder is not None) as flag:
        stop = StopOnSignal(flag, writer.save)
        fit(state, x_train, y_train, training, dataset.task, n_classes=n_classes, callbacks=[*callbacks, stop],
            eval_set=(eval_name, *splits[eval_name]) if eval_name else None, weight=weight,
            step=training_step(state, config, dataset.task, x_train, y_train))
    if stop.stopped_at is not None:
        raise TrainingInterrupted(flag.signal_number, stop.stopped_at, training.epochs, run_dir)
    metrics = {name: score_split(state.model, x, y, dataset.task, n_classes)
               for name, (x, y) in splits.items()
               if name != "train" or (score_training_rows and "shard" not in dataset.source)}  # a shard is not all rows
    meta = writer.save(state, metrics)
    model = TrainedModel(state.model.eval(), dataset.task, dataset.classes, dataset.preprocessor, meta)
    return RunResult(model, state.history, metrics, config, run_dir, initial_test_loss, state.stop_reason)


def _record_snapshot(state: TrainingState) -> None:
    weights = {name: plain_copy(tensor) for name, tensor in state.model.state_dict().items()}
    state.snapshots.append({"epoch": state.epoch, "weights": weights})


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
                 "history.json": json.dumps(_finite(state.history), indent=1).encode(),
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


def describe_training(config: Config) -> str:
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
    if data.scale_target:
        parts.append("regression target standardised")
    return ", ".join(parts)
