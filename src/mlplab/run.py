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

import datetime as dt
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__, fastpath
from .checkpoint import (
    CHECKPOINT_NAME,
    CheckpointError,
    atomic_write,
    atomic_write_text,
    load_checkpoint,
    plain_copy,
    save_checkpoint,
    save_state_dict,
)
from .config import Config, MlplabError, to_toml
from .data import Dataset, file_digest, load_dataset
from .metrics import confusion_matrix, predicted_indices, probabilities_from_logits
from .model import MLP, OUTPUT_FUNCTIONS
from .preprocess import DataError, Preprocessor, as_table, unscale_target
from .training import (
    Callback,
    EarlyStopping,
    Every,
    Progress,
    TrainingDiverged,
    TrainingState,
    build_optimizer,
    build_scheduler,
    evaluate_split,
    fit,
    resolve_device,
)

__all__ = ["Run", "TrainedModel", "load", "resume", "train"]

@dataclass
class TrainedModel:
    """A trained network with everything needed to use it: preprocessing, task and class labels.

    Examples
    --------
    >>> import mlplab
    >>> run = mlplab.train(mlplab.Config.from_dict({"training": {"epochs": 300}}), save=False)
    >>> run.model.predict([[-1.0, 1.0], [1.0, 1.0]]).tolist()
    [1, 0]
    >>> run.model.predict_proba([[-1.0, 1.0]]).shape  # one column per class, as in scikit-learn
    (1, 2)
    """

    module: MLP
    task: str
    classes: list[Any] | None
    preprocessor: Preprocessor
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def feature_names(self) -> list[str]:
        return self.preprocessor.feature_names

    def decision_function(self, x: Any) -> np.ndarray:
        """The network's raw outputs (logits) in float64: shape (n,) for binary and regression, (n, k)
        for multiclass."""
        parameter = next(self.module.parameters())
        matrix = self._encode(x, np.dtype(str(parameter.dtype).replace("torch.", "")))
        self.module.eval()
        logits = np.empty((len(matrix), self.module.sizes[-1]))
        with torch.inference_mode():
            # ~8k-row chunks: faster than one huge product, and peak memory stays flat.
            for start in range(0, len(matrix), 8192):
                chunk = torch.from_numpy(matrix[start:start + 8192]).to(parameter.device)
                logits[start:start + 8192] = self.module(chunk).cpu().numpy()
        return logits if self.task == "multiclass" else logits[:, 0]

    def _encode(self, x: Any, dtype: np.dtype) -> np.ndarray:
        """Rows as the network's input matrix: a numeric array goes straight through (no copy when its
        dtype already fits); tables, DataFrames and text columns go through the preprocessing."""
        if self.preprocessor.all_numeric and not hasattr(x, "columns") and not isinstance(x, dict):
            array = np.asarray(x)
            if array.dtype.kind in "biuf" and array.ndim in (1, 2):
                array = array.reshape(1, -1) if array.ndim == 1 else array
                if array.shape[1] != len(self.feature_names):
                    raise DataError(f"expected {len(self.feature_names)} feature(s) per row "
                                    f"({', '.join(self.feature_names)}), got {array.shape[1]}")
                return self.preprocessor.transform_matrix(array, dtype)
        return self.preprocessor.transform(as_table(x, self.feature_names), dtype)

    def predict_proba(self, x: Any) -> np.ndarray:
        """Class probabilities, shape (n, n_classes), columns in the order of ``classes``. Computed in
        float64 from the logits, so rows sum to 1 and the ranking of the logits is kept."""
        if self.task == "regression":
            raise MlplabError("a regression model has no class probabilities; use predict")
        probabilities = probabilities_from_logits(self.decision_function(x), self.task)
        if self.task == "binary":
            return np.stack([1.0 - probabilities, probabilities], axis=1)
        return probabilities

    def predict(self, x: Any) -> np.ndarray:
        """Class labels as they were in the training data, or values for regression."""
        if self.task == "regression":
            return unscale_target(self.decision_function(x), self.meta.get("target_scaling"))
        probabilities = self.predict_proba(x)
        indices = predicted_indices(probabilities[:, 1] if self.task == "binary" else probabilities)
        return np.asarray(self.classes)[indices]

    def save(self, path: str | Path) -> None:
        save_checkpoint(path, self.module.state_dict(), self.meta)


@dataclass
class Run:
    """What :func:`train` returns: the model, its per-epoch history, final metrics and run folder."""

    model: TrainedModel
    history: list[dict[str, Any]]
    metrics: dict[str, dict[str, float]]
    config: Config
    path: Path | None
    initial_test_loss: float | None
    stop_reason: str | None = None


def train(config: Config | None = None, *, out: str | Path | None = None, save: bool = True,
          force: bool = False, verbose: bool = False, callbacks: list[Callback] = ()) -> Run:
    """Train a network as ``config`` says and (unless ``save=False``) write a run folder.

    ``out`` is the run folder (default ``runs/<data set>-<time>``); an existing run there is an error
    unless ``force``. ``verbose`` prints what the CLI shows (the loss every ``log_every`` epochs, a live
    bar on a terminal); ``callbacks`` run after mlplab's own.
    With the default config this is the tutorial, start to finish.
    """
    config = (config or Config()).validate()
    device = resolve_device(config.training.device)
    dataset = load_dataset(config)
    run_dir = _run_folder(out, config, force) if save else None
    torch.manual_seed(config.seed)  # before the layers are made: the seed governs the initial weights
    module = _build_module(config, dataset).to(device)
    state = new_training_state(module, config)
    return _train_and_save(config, dataset, state, run_dir, device, verbose, list(callbacks), {})


def resume(path: str | Path, *, epochs: int | None = None, verbose: bool = False,
           callbacks: list[Callback] = ()) -> Run:
    """Continue the run in folder ``path`` from its last checkpoint, with the optimiser, scheduler and
    random-number states it saved, so the result equals a run never interrupted. ``epochs`` may raise
    the total number of epochs."""
    run_dir = Path(path)
    checkpoint = load_checkpoint(run_dir)
    saved = checkpoint.training_state
    if not saved:
        raise CheckpointError(f"{run_dir} holds no training state to resume from")
    config = Config.from_dict(checkpoint.meta["config"])
    if epochs is not None:
        config.training.epochs = epochs
    config.validate()
    device = resolve_device(config.training.device)
    dataset = load_dataset(config)
    expected = checkpoint.meta.get("data", {}).get("sha256")
    if expected and expected != file_digest(config.data.path):
        raise DataError(f"{config.data.path} has changed since the run started; resume needs the same data")
    module = _build_module(config, dataset)
    module.load_state_dict(checkpoint.weights)
    module.to(device)
    state = new_training_state(module, config)
    state.optimizer.load_state_dict(saved["optimizer"])
    if state.scheduler is not None and saved.get("scheduler"):
        state.scheduler.load_state_dict(saved["scheduler"])
    state.generator.set_state(saved["generator"])
    torch.set_rng_state(saved["torch_rng"])
    state.epoch, state.history = int(saved["epoch"]), json.loads(saved["history"])
    state.best_epoch, state.seconds = saved.get("best_epoch"), float(saved.get("seconds", 0.0))
    if (run_dir / "snapshots.pt").is_file():  # keep the snapshots taken before the interruption
        recorded = torch.load(run_dir / "snapshots.pt", weights_only=True)
        state.snapshots = [snapshot for snapshot in recorded if snapshot["epoch"] <= state.epoch]
    if verbose:
        print(f"Resuming {run_dir} at epoch {state.epoch} of {config.training.epochs}")
    return _train_and_save(config, dataset, state, run_dir, device, verbose, list(callbacks),
                           saved.get("early_stopping") or {}, checkpoint.meta.get("initial_test_loss"))


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


def load(path: str | Path) -> TrainedModel:
    """Load a trained model from a run folder or a checkpoint file; needs nothing else.

    Examples
    --------
    >>> import mlplab, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> run = mlplab.train(mlplab.Config.from_dict({"training": {"epochs": 300}}), out=folder)
    >>> mlplab.load(folder).predict([[-1, 1]]).tolist()
    [1]
    """
    checkpoint = load_checkpoint(path)
    meta = checkpoint.meta
    try:
        architecture = meta["architecture"]
        module = MLP(architecture["n_inputs"], architecture["hidden_sizes"], architecture["n_outputs"],
                     architecture["activation"], architecture.get("dropout", 0.0),
                     dtype=architecture.get("dtype", "float32"))
        module.load_state_dict(checkpoint.weights)
        preprocessor = Preprocessor.from_dict(meta["preprocessor"])
    except (KeyError, TypeError, RuntimeError) as error:
        raise CheckpointError(f"{path}: the checkpoint's description does not fit its weights ({error})") from None
    module.eval()
    return TrainedModel(module, meta["task"], meta.get("classes"), preprocessor, meta)


# --- the steps ----------------------------------------------------------------------------------------

def _run_folder(out: str | Path | None, config: Config, force: bool) -> Path:
    if out is None:
        base = Path("runs") / f"{Path(config.data.path).stem if config.data.path else config.data.dataset}-" \
                              f"{dt.datetime.now():%Y%m%d-%H%M%S}"
        run_dir, number = base, 1
        while run_dir.exists():
            number += 1
            run_dir = base.with_name(f"{base.name}-{number}")
        return run_dir
    run_dir = Path(out)
    if run_dir.exists() and not run_dir.is_dir():
        raise MlplabError(f"--out {run_dir} is a file; give a folder for the run")
    if (run_dir / CHECKPOINT_NAME).exists() and not force:
        raise MlplabError(f"{run_dir} already holds a run; choose another --out, or --force to replace it")
    return run_dir


def _build_module(config: Config, dataset: Dataset) -> MLP:
    n_outputs = len(dataset.classes) if dataset.task == "multiclass" else 1
    return MLP(dataset.preprocessor.n_inputs, config.model.hidden_sizes, n_outputs, config.model.activation,
               config.model.dropout, config.model.init, config.model.dtype)


def new_training_state(module: MLP, config: Config) -> TrainingState:
    """A fresh optimiser (the fast path's PlainSGD where it applies) and scheduler for ``module``."""
    device = next(module.parameters()).device
    if fastpath.applies(config, device):
        optimizer = fastpath.PlainSGD(module.parameters(), config.training.learning_rate,
                                      config.training.weight_decay)
    else:
        optimizer = build_optimizer(module, config.training)
    return TrainingState(module, optimizer, build_scheduler(optimizer, config.training),
                         torch.Generator().manual_seed(config.seed))


def _tensors(x: np.ndarray, y: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows as tensors; float targets (binary, regression) in the features' precision. Read-only arrays
    (a memory map, say) are copied: torch tensors are writable."""
    x_tensor, y_tensor = (torch.from_numpy(array if array.flags.writeable else array.copy()) for array in (x, y))
    if y_tensor.is_floating_point():
        y_tensor = y_tensor.to(x_tensor.dtype)
    return x_tensor.to(device), y_tensor.to(device)


def _train_and_save(config: Config, dataset: Dataset, state: TrainingState, run_dir: Path | None,
                    device: torch.device, verbose: bool, extra: list[Callback],
                    early_stopping_state: dict[str, Any], initial_test_loss: float | None = None,
                    score_training_rows: bool = True) -> Run:
    training = config.training
    n_classes = len(dataset.classes) if dataset.classes else None
    x_train, y_train = _tensors(dataset.x_train, dataset.y_train, device)
    weight = None if dataset.weight is None else torch.from_numpy(dataset.weight).to(device)
    splits = {"train": (x_train, y_train)}
    if dataset.x_val is not None:
        splits["val"] = _tensors(dataset.x_val, dataset.y_val, device)
    if dataset.x_test is not None:
        splits["test"] = _tensors(dataset.x_test, dataset.y_test, device)
        if initial_test_loss is None:
            initial_test_loss = evaluate_split(state.model, *splits["test"], dataset.task, n_classes)["loss"]
    eval_name = "val" if "val" in splits else "test" if "test" in splits else None
    if verbose:
        print(dataset.describe())
        print(f"model: {describe_architecture(state.model, dataset.task)}; {describe_training(config)}")
        if state.epoch == 0 and initial_test_loss is not None:
            print(f"Before training, test loss is {initial_test_loss:.6f}")

    stopper = EarlyStopping(training.patience) if training.early_stopping else None
    if stopper and early_stopping_state:
        stopper.load_state_dict(early_stopping_state)
    writer = RunWriter(run_dir, config, dataset, stopper, initial_test_loss)
    callbacks: list[Callback] = [Progress(training.epochs, training.log_every)] if verbose else []
    callbacks += [stopper] if stopper else []
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)  # only now: every input has been checked
        if training.checkpoint_every:
            callbacks.append(Every(training.checkpoint_every, writer.save))
    if training.snapshot_every:
        callbacks.append(Every(training.snapshot_every, _record_snapshot))
    callbacks += extra

    try:
        fit(state, x_train, y_train, training, dataset.task, n_classes=n_classes, callbacks=callbacks,
            eval_set=(eval_name, *splits[eval_name]) if eval_name else None, weight=weight)
    except TrainingDiverged:
        writer.save_history(state)  # keep the last good checkpoint; record how far it got
        raise
    metrics = {name: evaluate_split(state.model, x, y, dataset.task, n_classes)
               for name, (x, y) in splits.items() if name != "train" or score_training_rows}
    meta = writer.save(state, metrics)
    model = TrainedModel(state.model.eval(), dataset.task, dataset.classes, dataset.preprocessor, meta)
    return Run(model, state.history, metrics, config, run_dir, initial_test_loss, state.stop_reason)


def _record_snapshot(state: TrainingState) -> None:
    weights = {name: plain_copy(tensor) for name, tensor in state.model.state_dict().items()}
    state.snapshots.append({"epoch": state.epoch, "weights": weights})


@dataclass
class RunWriter:
    """Writes the run folder: mid-way (resumable checkpoints) and at the end (with final metrics)."""

    run_dir: Path | None
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
        with torch.inference_mode():
            device = next(model.parameters()).device
            logits = model.eval()(torch.from_numpy(self.dataset.x_test).to(device)).cpu().numpy()
        probabilities = probabilities_from_logits(logits, self.dataset.task)
        return confusion_matrix(self.dataset.y_test, predicted_indices(probabilities),
                                len(self.dataset.classes)).tolist()

    def save_history(self, state: TrainingState) -> None:
        if self.run_dir is not None:
            atomic_write_text(self.run_dir / "history.json", json.dumps(_finite(state.history), indent=1))

    def save(self, state: TrainingState, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write every file of the run folder (each atomically); returns the meta."""
        meta = self.meta(state, metrics)
        run_dir = self.run_dir
        if run_dir is None:
            return meta
        training_state = {
            "epoch": state.epoch,
            "seconds": state.seconds,
            "history": json.dumps(_finite(state.history)),
            "optimizer": state.optimizer.state_dict(),
            "scheduler": state.scheduler.state_dict() if state.scheduler is not None else {},
            "generator": state.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "best_epoch": state.best_epoch,
            "early_stopping": self.stopper.state_dict() if self.stopper else {},
        }
        save_checkpoint(run_dir / CHECKPOINT_NAME, state.model.state_dict(), meta, training_state)
        save_state_dict(run_dir / "model.pt", state.model.state_dict())
        self.save_history(state)
        atomic_write_text(run_dir / "config.toml", to_toml(self.config))
        atomic_write_text(run_dir / "run.json", json.dumps(meta, indent=2))
        if state.snapshots:
            buffer = io.BytesIO()
            torch.save(state.snapshots, buffer)
            atomic_write(run_dir / "snapshots.pt", lambda handle: handle.write(buffer.getvalue()))
        return meta


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
