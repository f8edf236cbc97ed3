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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import (
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    load_snapshots,
)
from .config import Config, ConfigError, MlplabError, with_absolute_paths
from .data import Dataset, describe_data_source, file_digest, load_dataset
from .inference import TrainedModel, load
from .interrupt import TrainingInterrupted
from .preprocess import DataError
from .resources import checkpoint_bytes_estimate
from .runfolder import RunFolder, RunFolderError, pending_folder
from .runwriter import (  # noqa: F401 - re-exported
    HISTORY_NAME,
    RunFolderWriter,
    _finite,  # noqa: F401 - re-exported for the sweep
    history_json,
    read_history,
)
from .steps import (  # noqa: F401 - the steps are re-exported: the web app, the estimators and DDP import them here
    RunResult,
    RunSetup,
    _build_module,
    new_training_state,
    train_and_save,
    training_step,
)
from .training import (
    Callback,
    TrainingState,
    resolve_device,
)

__all__ = ["RunResult", "TrainedModel", "load", "resume", "train"]  # TrainedModel, load: from inference.py


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
        setup = RunSetup(config, dataset, state, device, folder)
        return _in_folder(folder, lambda: train_and_save(setup, verbose=verbose, callbacks=list(callbacks),
                                                         handle_signals=handle_signals))


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
        setup = RunSetup(config, dataset, state, device, folder, checkpoint.meta.get("initial_test_loss"),
                         checkpoint.training_state.get("early_stopping") or {})
        return _in_folder(folder, lambda: train_and_save(setup, verbose=verbose, callbacks=list(callbacks),
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
    run = train_and_save(RunSetup(config, dataset, state, device), verbose=verbose, callbacks=list(callbacks),
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
