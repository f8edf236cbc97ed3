"""K networks of one shape trained as one computation: stacked weights, batched matrix products, and the
chain rule written out by hand (as ``backprop.py`` and the fast path do), for every model at once.

For tiny networks an epoch of one model is ~20 tensor operations whose cost is dispatch, not arithmetic;
stacking K models along a leading axis makes the same ~40 operations do K models' work. Each model keeps
exactly what ``mlplab train`` would do with its settings: its own seeded data and initial weights (built by
the same functions), its own shuffling generator, learning rate, weight decay, momentum, epochs and
early stopping; only the arithmetic is shared. Measured against ``torch.func.vmap`` over autograd in
``mlplab bench`` (the hand-written form is several times faster at tutorial size).

Layout: every model's parameters sit in one row of a (K, P) matrix, layer by layer as [W | b] blocks, so an
optimiser update, a learning-rate mask or a best-weights copy is one operation for all models. Each layer's
input carries a column of ones, so z = [a, 1] [W | b]^T is one batched product and so is the gradient
dL/d[W | b] = dz^T [a, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .config import Config, MlplabError

__all__ = ["BatchedResult", "Member", "train_batched"]

ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults, which mlplab train uses
RMSPROP_ALPHA, RMSPROP_EPS = 0.99, 1e-8
SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805
SMALL_WORK = 1 << 21  # elements of the widest layer's activations, all models: below it, one thread

# name -> (forward into an output buffer, backward dL/da -> dL/dz given z and a). The backward ops are
# the very kernels autograd runs for these activations, so the gradients match torch's.
_aten = torch.ops.aten
ACTIVATIONS: dict[str, tuple[Any, Any]] = {
    "relu": (lambda z, out: torch.clamp(z, min=0, out=out), lambda g, z, a: _aten.threshold_backward(g, z, 0)),
    "tanh": (lambda z, out: torch.tanh(z, out=out), lambda g, z, a: _aten.tanh_backward(g, a)),
    "sigmoid": (lambda z, out: torch.sigmoid(z, out=out), lambda g, z, a: _aten.sigmoid_backward(g, a)),
    "leaky_relu": (lambda z, out: out.copy_(F.leaky_relu(z)),
                   lambda g, z, a: _aten.leaky_relu_backward(g, z, 0.01, False)),
    "elu": (lambda z, out: out.copy_(F.elu(z)), lambda g, z, a: _aten.elu_backward(g, 1.0, 1.0, 1.0, False, z)),
    "selu": (lambda z, out: out.copy_(F.selu(z)),
             lambda g, z, a: _aten.elu_backward(g, SELU_ALPHA, SELU_SCALE, 1.0, False, z)),
    "gelu": (lambda z, out: out.copy_(F.gelu(z)), lambda g, z, a: _aten.gelu_backward(g, z)),
    "silu": (lambda z, out: out.copy_(F.silu(z)), lambda g, z, a: _aten.silu_backward(g, z)),
    "softplus": (lambda z, out: out.copy_(F.softplus(z)), lambda g, z, a: _aten.softplus_backward(g, z, 1.0, 20.0)),
    "identity": (lambda z, out: out.copy_(z), lambda g, z, a: g),
}

# Settings each member of one batch may set for itself; every other setting must be equal in the batch.
PER_MODEL = ("seed", "training.learning_rate", "training.weight_decay", "training.momentum", "training.epochs",
             "training.early_stopping", "training.patience", "training.log_every", "training.checkpoint_every",
             "training.snapshot_every")


@dataclass
class Member:
    """One model of a batch: its config, its data (a :class:`~mlplab.data.Dataset`) and initial module."""

    config: Config
    dataset: Any
    module: torch.nn.Module


@dataclass
class BatchedResult:
    """What training did to one member: its per-epoch curves, final weights and why it stopped."""

    history: dict[str, np.ndarray]  # name -> one value per epoch run (train_loss, train_accuracy, val_loss...)
    state_dict: dict[str, torch.Tensor]
    epochs: int
    best_epoch: int | None
    stop_reason: str | None = None
    diverged: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def unsupported(config: Config) -> str | None:
    """Why the batched trainer cannot train ``config`` exactly as ``mlplab train`` would, or None."""
    training, model = config.training, config.model
    if model.activation not in ACTIVATIONS:
        return f"model.activation {model.activation} has no batched form"
    for key, value, allowed in (("training.schedule", training.schedule, "none"),
                                ("model.dropout", model.dropout, 0.0), ("training.l1", training.l1, 0.0),
                                ("training.clip_grad", training.clip_grad, None)):
        if value != allowed:
            return f"{key} = {value} is not supported by the batched sweep (only {allowed})"
    return None


def group_key(config: Config, dataset: Any) -> tuple:
    """Members with equal keys share one batch: same shapes, task, optimiser kind and split sizes."""
    values = config.to_dict()
    for key in PER_MODEL:
        section, _, name = key.rpartition(".")
        (values[section] if section else values).pop(name)
    values.pop("data")  # the data may differ (each seed draws its own); only its shapes must agree
    sizes = tuple(None if x is None else x.shape for x in (dataset.x_train, dataset.x_val, dataset.x_test))
    return repr(values), sizes, dataset.task, len(dataset.classes or ())


def train_batched(members: list[Member], device: torch.device | str = "cpu") -> list[BatchedResult]:
    """Train every member as ``mlplab train`` would, all at once. Members must share :func:`group_key`.

    Small batches run on one CPU thread: handing a tiny product to a second thread costs more than it
    saves, and on a busy machine waiting for that thread to be scheduled costs milliseconds per operation."""
    batch = _Batch(members, torch.device(device))
    threads = torch.get_num_threads()
    small = batch.device.type == "cpu" and batch.K * batch.n_train * max(batch.sizes) < SMALL_WORK
    if small:
        torch.set_num_threads(1)
    try:
        return batch.train()
    finally:
        if small:
            torch.set_num_threads(threads)


class _Batch:
    def __init__(self, members: list[Member], device: torch.device):
        first = members[0]
        self.members, self.device, self.K = members, device, len(members)
        self.task, self.training = first.dataset.task, first.config.training
        self.dtype = getattr(torch, first.config.model.dtype)
        self.sizes = list(first.module.sizes)
        self.activation, self.activation_backward = ACTIVATIONS[first.config.model.activation]
        self.eval_name = "val" if first.dataset.x_val is not None else "test" if first.dataset.x_test is not None \
            else None
        # parameters: one row per model, layer by layer [W | b]
        shapes = [(fan_out, fan_in + 1) for fan_in, fan_out in zip(self.sizes, self.sizes[1:])]
        self.offsets = np.cumsum([0] + [a * b for a, b in shapes]).tolist()
        rows = [torch.cat([torch.cat([layer.weight.detach(), layer.bias.detach()[:, None]], 1).reshape(-1)
                           for layer in m.module.linears]) for m in members]
        self.flat = torch.stack(rows).to(device, self.dtype)
        self.layers = [self.flat[:, a:b].view(self.K, *shape)
                       for a, b, shape in zip(self.offsets, self.offsets[1:], shapes)]
        self.weights = [layer[..., :-1] for layer in self.layers]
        self.shapes = shapes

        def column(key: str) -> torch.Tensor:
            section, name = key.split(".")
            values = [float(getattr(getattr(m.config, section), name)) for m in members]
            return torch.tensor(values, dtype=self.dtype, device=device)[:, None]

        self.lr, self.decay, self.momentum = (column(f"training.{name}") for name in
                                              ("learning_rate", "weight_decay", "momentum"))
        self.max_epochs = torch.tensor([m.config.training.epochs for m in members])
        self.patience = torch.tensor([m.config.training.patience if m.config.training.early_stopping else 0
                                      for m in members])
        self._data()

    # --- data: shared when every member has the same arrays, stacked otherwise -------------------------
    def _data(self) -> None:
        unique: dict[int, int] = {}
        self.data_of = [unique.setdefault(id(m.dataset), len(unique)) for m in self.members]
        datasets = list({id(m.dataset): m.dataset for m in self.members}.values())
        self.shared = len(datasets) == 1

        def stack(name: str, augment: bool) -> torch.Tensor | None:
            arrays = [getattr(d, name) for d in datasets]
            if arrays[0] is None:
                return None
            tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]
            if augment:
                tensors = [torch.cat([t, torch.ones(len(t), 1, dtype=t.dtype)], 1) for t in tensors]
            elif tensors[0].is_floating_point():
                tensors = [t.to(self.dtype) for t in tensors]
            out = tensors[0] if self.shared else torch.stack(tensors)[torch.tensor(self.data_of)]
            return out.to(self.device)

        self.x = {split: stack(f"x_{split}", True) for split in ("train", "val", "test")}
        self.y = {split: stack(f"y_{split}", False) for split in ("train", "val", "test")}
        if self.task == "binary":
            self.labels = {s: None if y is None else y >= 0.5 for s, y in self.y.items()}
        else:
            self.labels = self.y
        self.n_train = self.x["train"].shape[-2]
        seeds = [m.config.seed for m in self.members]
        unique_seeds = sorted(set(seeds))
        self.seed_of = torch.tensor([unique_seeds.index(s) for s in seeds], device=self.device)
        self.generators = [torch.Generator().manual_seed(s) for s in unique_seeds]

    # --- the computation -----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, keep: bool) -> tuple[torch.Tensor, list, list]:
        """Logits (K, n, outputs); with ``keep``, each layer's augmented input and weighted sums."""
        inputs, sums = [x], []
        for k in range(len(self.layers) - 1):
            z = torch.matmul(inputs[-1], self.layers[k].transpose(1, 2))
            hidden = torch.ones(self.K, z.shape[1], z.shape[2] + 1, dtype=z.dtype, device=z.device)
            self.activation(z, hidden[..., :-1])
            inputs.append(hidden)
            sums.append(z)
        logits = torch.matmul(inputs[-1], self.layers[-1].transpose(1, 2))
        return logits, inputs, sums

    def loss_and_gradient(self, logits: torch.Tensor, y: torch.Tensor, gradient: bool):
        """Per-model loss sums (K,) and dL/dlogits of each model's mean loss."""
        n = logits.shape[1]
        if self.task == "binary":
            z = logits[..., 0]
            target = y.expand_as(z)
            losses = F.binary_cross_entropy_with_logits(z, target, reduction="none").sum(1)
            dz = torch.sigmoid(z).sub_(target).div_(n)[..., None] if gradient else None
        elif self.task == "multiclass":
            log_p = torch.log_softmax(logits, -1)
            index = y.expand(logits.shape[:2])[..., None]
            losses = -log_p.gather(-1, index).sum((1, 2))
            dz = log_p.exp_().scatter_add_(-1, index, torch.full_like(log_p[..., :1], -1.0)).div_(n) \
                if gradient else None
        else:
            difference = logits[..., 0] - y
            losses = difference.square().sum(1)
            dz = difference.mul_(2.0 / n)[..., None] if gradient else None
        return losses, dz

    def correct(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.task == "binary":
            return ((logits[..., 0] >= 0) == labels).sum(1)
        if self.task == "multiclass":
            return (logits.argmax(-1) == labels).sum(1)
        return torch.zeros(self.K, dtype=torch.long, device=self.device)

    def backward(self, dz: torch.Tensor, inputs: list, sums: list) -> torch.Tensor:
        """dL/d[W | b] of every layer, as one (K, P) matrix laid out like the parameters."""
        grads = []
        for k in range(len(self.layers) - 1, -1, -1):
            grads.append(torch.matmul(dz.transpose(1, 2), inputs[k]).reshape(self.K, -1))
            if k:
                dz = self.activation_backward(torch.matmul(dz, self.weights[k]), sums[k - 1],
                                              inputs[k][..., :-1])
        return torch.cat(grads[::-1], 1)

    def step(self, gradient: torch.Tensor, lr: torch.Tensor) -> None:
        """One optimiser update of every model, as torch.optim does it (``lr`` is 0 for stopped models)."""
        flat, kind = self.flat, self.training.optimizer
        self.steps += 1
        if kind == "adamw":
            flat.mul_(1 - lr * self.decay)
        elif self.any_decay:
            gradient = gradient.addcmul_(flat, self.decay)
        if kind == "sgd":
            if self.any_momentum:
                self.buffer = gradient.clone() if self.buffer is None else \
                    self.buffer.mul_(self.momentum).add_(gradient)
                gradient = gradient.addcmul_(self.buffer, self.momentum) if self.training.nesterov else self.buffer
            flat.addcmul_(gradient, lr, value=-1)
        elif kind in ("adam", "adamw"):
            beta1, beta2 = ADAM_BETAS
            self.m.lerp_(gradient, 1 - beta1)
            self.v.mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
            correction1, correction2 = 1 - beta1 ** self.steps, 1 - beta2 ** self.steps
            denominator = (self.v.sqrt() / math.sqrt(correction2)).add_(ADAM_EPS)
            flat.sub_(self.m.div(denominator).mul_(lr / correction1))
        else:  # rmsprop
            self.v.mul_(RMSPROP_ALPHA).addcmul_(gradient, gradient, value=1 - RMSPROP_ALPHA)
            denominator = self.v.sqrt().add_(RMSPROP_EPS)
            if self.any_momentum:
                self.buffer = torch.zeros_like(flat) if self.buffer is None else self.buffer
                self.buffer.mul_(self.momentum).addcdiv_(gradient, denominator)
                flat.addcmul_(self.buffer, lr, value=-1)
            else:
                flat.sub_(gradient.div_(denominator).mul_(lr))

    def train(self) -> list[BatchedResult]:
        K, epochs = self.K, int(self.max_epochs.max())
        self.steps, self.buffer = 0, None
        self.any_decay = bool((self.decay != 0).any())
        self.any_momentum = bool((self.momentum != 0).any())
        self.m = torch.zeros_like(self.flat)
        self.v = torch.zeros_like(self.flat)
        curves = {name: torch.full((epochs, K), math.nan, dtype=torch.float64) for name in self._curve_names()}
        active = torch.ones(K, dtype=torch.bool)
        ran = torch.zeros(K, dtype=torch.long)
        best_loss = torch.full((K,), math.inf, dtype=torch.float64)
        best_epoch = torch.zeros(K, dtype=torch.long)
        wait = torch.zeros(K, dtype=torch.long)
        watching = self.patience > 0
        best_flat = self.flat.clone() if bool(watching.any()) else None
        reasons: list[str | None] = [None] * K
        diverged = torch.zeros(K, dtype=torch.bool)
        lr = self.lr.clone()
        batch = self.training.batch_size
        shuffle = batch is not None and batch < self.n_train
        x_train, y_train, labels_train = self.x["train"], self.y["train"], self.labels["train"]
        for epoch in range(epochs):
            if shuffle:
                x_epoch, y_epoch, labels_epoch = self._shuffled(active)
                bounds = range(0, self.n_train, batch)
            else:
                x_epoch, y_epoch, labels_epoch, bounds, batch = x_train, y_train, labels_train, [0], self.n_train
            loss_sum = torch.zeros(K, dtype=self.dtype, device=self.device)
            correct = torch.zeros(K, dtype=torch.long, device=self.device)
            for start in bounds:
                x, y, labels = (t[..., start:start + batch, :] if t.dim() - (0 if self.shared else 1) == 2
                                else t[..., start:start + batch] for t in (x_epoch, y_epoch, labels_epoch))
                logits, inputs, sums = self.forward(x, keep=True)
                losses, dz = self.loss_and_gradient(logits, y, True)
                loss_sum += losses
                correct += self.correct(logits, labels)
                self.step(self.backward(dz, inputs, sums), lr)
            record = {"train_loss": loss_sum.double().cpu() / self.n_train}
            if self.task != "regression":
                record["train_accuracy"] = correct.double().cpu() / self.n_train
            if self.eval_name:
                record.update(self.evaluate(self.eval_name))
            for name, values in record.items():
                curves[name][epoch] = torch.where(active, values, curves[name][epoch])
            ran += active
            # stop: diverged, finished, or early stopping (patience epochs without a better eval loss)
            newly_diverged = active & ~torch.isfinite(record["train_loss"])
            finished = active & (ran >= self.max_epochs)
            stopping = torch.zeros(K, dtype=torch.bool)
            if best_flat is not None:
                loss = record[f"{self.eval_name}_loss"]
                improved = active & watching & (loss < best_loss)
                best_loss = torch.where(improved, loss, best_loss)
                best_epoch = torch.where(improved, epoch + 1, best_epoch)
                wait = torch.where(improved, 0, wait + active.long())
                if bool(improved.any()):
                    best_flat = torch.where(improved.to(self.device)[:, None], self.flat, best_flat)
                stopping = active & watching & ~improved & (wait >= self.patience) & ~finished
            ended = newly_diverged | finished | stopping
            if bool(ended.any()):
                for k in torch.nonzero(ended).flatten().tolist():
                    if newly_diverged[k]:
                        diverged[k] = True
                        reasons[k] = (f"diverged at epoch {epoch + 1}: the learning rate "
                                      f"{float(self.lr[k]):g} is probably too high")
                    elif stopping[k]:
                        reasons[k] = (f"early stopping: val_loss did not improve for {int(self.patience[k])} "
                                      f"epochs; restored the best weights, from epoch {int(best_epoch[k])}")
                active &= ~ended
                lr = self.lr * active.to(self.device, self.dtype)[:, None]  # stopped models stop updating
                if not bool(active.any()):
                    break
        if best_flat is not None:  # as EarlyStopping.on_train_end: the best weights go back
            restore = (watching & (best_epoch > 0)).to(self.device)[:, None]
            self.flat.copy_(torch.where(restore, best_flat, self.flat))
        return [self._result(k, curves, int(ran[k]), int(best_epoch[k]) if watching[k] and best_epoch[k] else None,
                             reasons[k], bool(diverged[k])) for k in range(K)]

    def _curve_names(self) -> list[str]:
        names = ["train_loss"] + (["train_accuracy"] if self.task != "regression" else [])
        if self.eval_name:
            names += [f"{self.eval_name}_loss"] + ([f"{self.eval_name}_accuracy"] if self.task != "regression" else [])
        return names

    def _shuffled(self, active: torch.Tensor):
        """This epoch's rows in each model's own seeded order: one permutation per distinct seed, drawn
        (like ``training.epoch_batches``) from a generator seeded as ``mlplab train`` seeds it."""
        orders = torch.stack([torch.randperm(self.n_train, generator=g) for g in self.generators]).to(self.device)
        if self.shared and len(self.generators) == 1:
            order = orders[0]
            return self.x["train"][order], self.y["train"][order], self.labels["train"][order]
        rows = orders[self.seed_of]  # (K, n)
        picked = []
        for t in (self.x["train"], self.y["train"], self.labels["train"]):
            if self.shared:
                picked.append(t[rows])
            else:
                picked.append(t.gather(1, rows[..., None].expand(-1, -1, t.shape[-1])) if t.dim() == 3
                              else t.gather(1, rows))
        return tuple(picked)

    @torch.no_grad()
    def evaluate(self, split: str) -> dict[str, torch.Tensor]:
        logits, _, _ = self.forward(self.x[split], keep=False)
        losses, _ = self.loss_and_gradient(logits, self.y[split], False)
        n = logits.shape[1]
        record = {f"{split}_loss": losses.double().cpu() / n}
        if self.task != "regression":
            record[f"{split}_accuracy"] = self.correct(logits, self.labels[split]).double().cpu() / n
        return record

    def _result(self, k: int, curves: dict[str, torch.Tensor], ran: int, best_epoch: int | None,
                reason: str | None, diverged: bool) -> BatchedResult:
        names = list(self.members[k].module.state_dict())
        tensors = []
        for layer in self.layers:
            tensors += [layer[k, :, :-1].detach().cpu().clone(), layer[k, :, -1].detach().cpu().clone()]
        history = {name: values[:ran, k].numpy().copy() for name, values in curves.items()}
        return BatchedResult(history, dict(zip(names, tensors)), ran, best_epoch, reason, diverged)


def check_batchable(config: Config) -> None:
    problem = unsupported(config)
    if problem:
        raise MlplabError(problem)
