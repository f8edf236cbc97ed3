"""fit(): the training loop, readable top to bottom, and the few small callbacks it calls.

One epoch is the tutorial's loop, generalised: zero the gradients, forward, loss, backward, step; in
mini-batches when ``batch_size`` is set (rows picked by indexing a seeded permutation, no DataLoader).
After each epoch the history gets one plain dict, and the callbacks, in order, may print, stop early or
save a checkpoint. The history is JSON-able data that plots, the CLI and ``mlplab runs`` all read.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .config import MlplabError, TrainingConfig
from .inference import Outputs, infer
from .metrics import task_loss, task_metrics
from .model import compute_loss
from .threads import choose_threads, thread_limit

__all__ = ["Callback", "EarlyStopping", "StepFunction", "TrainingDiverged", "TrainingState", "autograd_step", "fit"]

# One batch's update: step(x, y, w) -> (weighted loss sum, correct count); sums may stay tensors.
StepFunction = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], tuple[Any, Any]]


class TrainingDiverged(MlplabError):
    """The loss became NaN or infinite."""


@dataclass
class TrainingState:
    """Everything that changes while training; what a resumable checkpoint saves."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    generator: torch.Generator
    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str | None = None
    best_epoch: int | None = None
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0  # wall time spent in fit, over all sessions of a resumed run
    make_step: Any = None  # (model, optimizer, task, config) -> step; None: autograd or the fast path
    make_batches: Any = None  # epoch_batches' signature; a rank reading a shard of the rows sets its own


class Callback:
    """Code run during training: subclass it and override the hooks you need.

    Pass instances to :func:`mlplab.train` (``callbacks=[...]``) or to the estimators
    (``NeuralNetClassifier(callbacks=[...])``); they run in list order, after mlplab's own (progress,
    early stopping). Each hook receives the :class:`TrainingState`: ``state.epoch`` (epochs done),
    ``state.history`` (one dict per epoch: ``train_loss``, and ``val_loss``/``val_accuracy``... when
    there is a validation split), ``state.model`` (the ``torch.nn.Module``) and ``state.optimizer``.
    Setting ``state.stop_reason`` to a message stops training after the current epoch.

    Examples
    --------
    >>> import mlplab
    >>> class StopBelow(mlplab.Callback):
    ...     def on_epoch_end(self, state):
    ...         if state.history[-1]["train_loss"] < 0.3:
    ...             state.stop_reason = f"train loss below 0.3 at epoch {state.epoch}"
    >>> run = mlplab.train(mlplab.Config(), save=False, callbacks=[StopBelow()])
    >>> len(run.history) < 2000
    True
    """

    reads_scores_every_epoch = True
    """Whether ``on_epoch_end`` reads the held-out split's scores (``val_loss``...) of every epoch. Without
    such a callback (or early stopping, or the plateau schedule) they are computed only at the first
    and every ``log_every``-th epoch; set it to False in a callback that does not read them."""

    def on_train_begin(self, state: TrainingState) -> None:
        """Before the first epoch of this call (also when resuming)."""

    def on_epoch_end(self, state: TrainingState) -> None:
        """After each epoch, once ``state.history`` holds its record."""

    def on_train_end(self, state: TrainingState) -> None:
        """After the last epoch, before the run is scored and saved."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise MlplabError("device cuda was asked for but PyTorch sees no CUDA GPU; use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise MlplabError("device mps was asked for but is not available here; use --device cpu or auto")
    return torch.device(name)


def build_optimizer(model: torch.nn.Module, config: TrainingConfig) -> torch.optim.Optimizer:
    """The optimiser, with torch's fused kernels where this torch and device have them (one kernel for
    every parameter instead of several per tensor; the fastest Adam on a CPU)."""
    params, lr, decay = list(model.parameters()), config.learning_rate, config.weight_decay
    if config.optimizer == "sgd":
        kinds, options = torch.optim.SGD, {"momentum": config.momentum, "nesterov": config.nesterov}
    elif config.optimizer == "adam":
        kinds, options = torch.optim.Adam, {}
    elif config.optimizer == "adamw":
        kinds, options = torch.optim.AdamW, {}
    else:
        kinds, options = torch.optim.RMSprop, {"momentum": config.momentum}
    if kinds is not torch.optim.RMSprop and fused_kernel_exists(params):
        return kinds(params, lr=lr, weight_decay=decay, fused=True, **options)
    return kinds(params, lr=lr, weight_decay=decay, **options)


def fused_kernel_exists(params: list[torch.Tensor]) -> bool:
    """Whether torch has a fused update (one kernel for all parameters) for SGD/Adam/AdamW here:
    floating-point parameters on one device, CUDA, or the CPU from torch 2.4 on (checked, rather than
    trying ``fused=True`` and swallowing the error, so a real mistake is never hidden)."""
    devices = {p.device.type for p in params}
    if len(devices) != 1 or not all(p.is_floating_point() for p in params):
        return False
    device = devices.pop()
    version = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])
    return device == "cuda" or (device == "cpu" and version >= (2, 4))


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainingConfig) -> Any:
    if config.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, config.step_size, config.gamma)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    if config.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=config.gamma,
                                                          patience=max(config.patience // 2, 1))
    return None


def split_logits(model: torch.nn.Module, x: torch.Tensor, task: str, step: Any = None) -> Outputs:
    """The network's outputs for one split: through the one inference path, or, while the fast path
    trains, through its step's own NumPy forward (``step.logits_of``: the same arithmetic on the same
    parameters, ~5 µs for the tutorial's 20 test rows against ~120 µs through torch) for a split of up to
    ``fastpath.EVAL_ROWS`` rows."""
    logits_of = getattr(step, "logits_of", None)
    logits = None if logits_of is None else logits_of(x)  # None: not for a split this large
    return infer(model, x, task) if logits is None else Outputs(logits.astype(np.float64), task)


def score_split(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, task: str,
                n_classes: int | None, step: Any = None) -> dict[str, float]:
    """Loss and the task's metrics on one split (eval mode, no dropout; see :func:`split_logits` for
    ``step``); loss and metrics are computed in NumPy from the logits."""
    outputs = split_logits(model, x, task, step)
    y_true = y.cpu().numpy()
    results = {"loss": task_loss(outputs.logits, y_true, task)}
    results.update(task_metrics(task, y_true, outputs.probabilities, n_classes))
    return results


def quick_evaluation(step: Any, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                     task: str) -> dict[str, float]:
    """Loss and accuracy (R² for regression) on one split: what plots, early stopping and the plateau
    schedule read every epoch."""
    logits = split_logits(model, x, task, step).logits
    y_true = y.cpu().numpy()
    results = {"loss": task_loss(logits, y_true, task)}
    if task == "binary":
        results["accuracy"] = int(np.count_nonzero((logits[:, 0] >= 0) == (y_true >= 0.5))) / len(y_true)
    elif task == "multiclass":
        results["accuracy"] = int(np.count_nonzero(logits.argmax(axis=1) == y_true)) / len(y_true)
    else:
        total = float(((y_true - y_true.mean()) ** 2).sum())
        results["r2"] = 1.0 - results["loss"] * len(y_true) / total if total > 0 else 0.0
    return results


def fit(state: TrainingState, x_train: torch.Tensor, y_train: torch.Tensor, config: TrainingConfig,
        task: str, *, eval_set: tuple[str, torch.Tensor, torch.Tensor] | None = None,
        n_classes: int | None = None, callbacks: list[Callback] = (),
        weight: torch.Tensor | None = None, step: StepFunction | None = None) -> TrainingState:
    """Train ``state.model`` from ``state.epoch`` up to ``config.epochs``; returns the state.

    ``eval_set`` is ``(name, x, y)``: its loss and metrics are recorded after every epoch as
    ``{name}_loss``, ``{name}_accuracy``, ... (``val`` for a validation split). ``weight`` gives each
    training row a weight in the loss (sample_weight / class_weight). ``step`` does one batch's update
    (see :data:`StepFunction`); the default is :func:`autograd_step`, the tutorial's. The run passes
    the NumPy fast path's (``run.training_step``) where it applies; a batched multi-model step or a
    data-parallel step plugs in the same way. While it runs (callbacks included), this thread flushes
    subnormal floats to zero (:func:`flush_subnormals`) and objects made before the call sit out the
    garbage collector's full passes (:func:`objects_frozen`); both are put back when it returns.
    """
    model, optimizer = state.model, state.optimizer
    n_rows = len(x_train)
    total_weight = n_rows if weight is None else float(weight.sum())
    model.train()
    for callback in callbacks:
        callback.on_train_begin(state)  # may set state.make_step (data-parallel training does)
    # One batch's update: a step a callback installed (data-parallel), else the step given (the run
    # passes the NumPy fast path's where it applies), else the tutorial's autograd step.
    if state.make_step is not None:
        step = state.make_step(model, optimizer, task, config)
    elif step is None:
        step = autograd_step(model, optimizer, task, config)
    every_epoch = isinstance(state.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau) or any(
        getattr(callback, "reads_scores_every_epoch", True) for callback in callbacks)
    # A diverging fast path overflows in NumPy: the loss check below reports it, so NumPy need not warn.
    threads = choose_threads(model.sizes, min(config.batch_size or n_rows, n_rows), config.threads)
    with np.errstate(over="ignore", invalid="ignore"), thread_limit(threads), flush_subnormals(), \
            objects_frozen():
        started = time.perf_counter()
        while state.epoch < config.epochs and state.stop_reason is None:
            loss_sum, correct = 0.0, 0
            batches = state.make_batches or epoch_batches
            for x, y, w in batches(x_train, y_train, weight, config.batch_size, state.generator):
                batch_loss, batch_correct = step(x, y, w)
                loss_sum += batch_loss
                correct += batch_correct
            state.epoch += 1
            record: dict[str, Any] = {"epoch": state.epoch, "train_loss": float(loss_sum) / total_weight}
            if not math.isfinite(record["train_loss"]):
                state.history.append(record)
                raise TrainingDiverged(
                    f"training diverged at epoch {state.epoch} (train loss {record['train_loss']}): the learning "
                    f"rate {config.learning_rate:g} is probably too high; try {config.learning_rate / 10:g}")
            if task != "regression":
                record["train_accuracy"] = float(correct) / n_rows
            if eval_set is not None:
                name, x_eval, y_eval = eval_set
                # The full metric set at the first and every log_every-th epoch (fixed epochs, so a resumed
                # run records what an uninterrupted one does): what is printed and plotted. At the
                # other epochs only when something reads it every epoch (early stopping, the plateau
                # schedule, a user's callback), and then loss and accuracy (R²): a few µs on the fast path.
                # Scoring 20 rows every epoch was ~60% of the tutorial's epoch.
                if state.epoch == 1 or state.epoch % config.log_every == 0:
                    values = score_split(model, x_eval, y_eval, task, n_classes, step)
                elif every_epoch:
                    values = quick_evaluation(step, model, x_eval, y_eval, task)
                else:
                    values = {}
                record.update({f"{name}_{key}": value for key, value in values.items()})
            record["lr"] = optimizer.param_groups[0]["lr"]
            state.history.append(record)
            if state.scheduler is not None:
                if isinstance(state.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    state.scheduler.step(record.get("val_loss", record["train_loss"]))
                else:
                    state.scheduler.step()
            state.seconds += time.perf_counter() - started
            started = time.perf_counter()
            for callback in callbacks:
                callback.on_epoch_end(state)
    for callback in callbacks:
        callback.on_train_end(state)
    return state


@contextlib.contextmanager
def flush_subnormals() -> Iterator[None]:
    """Run the block with subnormal floats (below 1.2e-38 in float32) flushed to zero on this thread's
    CPU (``torch.set_flush_denormal``, which NumPy's arithmetic on this thread obeys too), and put the
    previous mode back after. CPUs work on subnormals 10-100x slower, and training makes them: Adam's
    moments of a dead ReLU unit decay into them and stick (0.9 x 4 units of the last place rounds back
    to 4), and confident rows' sigmoid(z) - y underflow into them. Measured on the tutorial with Adam:
    chunks of 1000 epochs at 45-420 µs an epoch with them, ~35 without. Values that small change
    nothing a loss or a metric shows."""
    if _flushing_subnormals() or not torch.set_flush_denormal(True):  # already on, or not on this CPU
        yield
        return
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


@contextlib.contextmanager
def objects_frozen() -> Iterator[None]:
    """Keep the objects that exist before training (torch's modules alone are ~170k) out of the cyclic
    garbage collector's full passes while training, and give them back after (``gc.freeze``/``unfreeze``).
    A full pass triggered mid-training walked them all: 126 ms, once in a 20,000-epoch tutorial run, 7 µs
    an epoch. Nothing is kept from collection for longer than the training; a process that froze objects
    itself (a server before forking) is left as it is."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _flushing_subnormals() -> bool:
    """Whether this thread flushes subnormal results to zero now (half the smallest normal float32)."""
    return bool(np.float32(np.finfo(np.float32).tiny) * np.float32(0.5) == 0)


def epoch_batches(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None, batch_size: int | None,
                  generator: torch.Generator):
    """One epoch's (x, y, weight) batches: the whole set (the tutorial's full batch), or slices of one
    copy shuffled by a seeded permutation. Gathering the rows once per epoch and slicing views is much
    faster than gathering every batch (or a per-sample DataLoader) and gives the same batches."""
    if batch_size is None or batch_size >= len(x):
        return [(x, y, weight)]
    order = torch.randperm(len(x), generator=generator).to(x.device)
    size = int(batch_size)
    xs, ys = x[order].split(size), y[order].split(size)
    return zip(xs, ys, weight[order].split(size) if weight is not None else [None] * len(xs))


def autograd_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, task: str, config: TrainingConfig):
    """A function ``step(x, y, w) -> (weighted loss sum, correct count)``: zero the gradients, forward,
    loss, backward, step, as in the tutorial. Sums stay tensors: a GPU is not synchronised every batch."""

    def step(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None):
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        loss = compute_loss(logits, y, task, w)
        objective = loss + config.l1 * l1_norm(model) if config.l1 > 0 else loss
        objective.backward()
        if config.clip_grad is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad)
        optimizer.step()
        correct = count_correct(logits.detach(), y, task) if task != "regression" else 0
        return loss.detach() * (len(y) if w is None else w.sum()), correct

    return step


def l1_norm(model: torch.nn.Module) -> torch.Tensor:
    """Sum of absolute weights (biases are not penalised, as in scikit-learn's alpha)."""
    return sum(layer.weight.abs().sum() for layer in model.linears)


def count_correct(logits: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    if task == "binary":
        return ((logits.squeeze(-1) >= 0) == (y >= 0.5)).sum()
    return (logits.argmax(dim=-1) == y).sum()


# --- callbacks ----------------------------------------------------------------------------------------

class EarlyStopping(Callback):
    """Stop when ``val_loss`` has not improved by ``min_delta`` for ``patience`` epochs; then put back the
    best weights. Its own state (best loss, wait, best weights) is saved in resumable checkpoints."""

    def __init__(self, patience: int, min_delta: float = 0.0):
        self.patience, self.min_delta = patience, min_delta
        self.best_loss, self.wait, self.best_weights = math.inf, 0, None

    def on_epoch_end(self, state: TrainingState) -> None:
        loss = state.history[-1]["val_loss"]
        if loss < self.best_loss - self.min_delta:
            self.best_loss, self.wait = loss, 0
            state.best_epoch = state.epoch
            self.best_weights = copy.deepcopy(state.model.state_dict())
        else:
            self.wait += 1
            if self.wait >= self.patience:
                state.stop_reason = (f"early stopping: val_loss did not improve for {self.patience} epochs; "
                                     f"restored the best weights, from epoch {state.best_epoch}")

    def on_train_end(self, state: TrainingState) -> None:
        if self.best_weights is not None:
            state.model.load_state_dict(self.best_weights)

    def state_dict(self) -> dict[str, Any]:
        return {"best_loss": self.best_loss, "wait": self.wait, "best_weights": self.best_weights}

    def load_state_dict(self, values: dict[str, Any]) -> None:
        self.best_loss, self.wait, self.best_weights = values["best_loss"], values["wait"], values["best_weights"]


class Every(Callback):
    """Call ``action(state)`` every ``every`` epochs (periodic checkpoints, weight snapshots)."""

    reads_scores_every_epoch = False

    def __init__(self, every: int, action):
        self.every, self.action = every, action

    def on_epoch_end(self, state: TrainingState) -> None:
        if self.every and state.epoch % self.every == 0:
            self.action(state)
