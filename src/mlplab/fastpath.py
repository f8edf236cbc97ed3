"""The fast path for tiny networks: the hand-derived backward pass of ``backprop.py`` and NumPy optimisers.

For the tutorial's 2-5-1 network on 80 rows an epoch is ~20 tiny tensor operations, and PyTorch's
per-operation overhead (dispatch, autograd bookkeeping) costs far more than the arithmetic. The same
chain rule in NumPy, updating the model's parameters in place (NumPy views share the tensors' memory),
does the epoch several times faster with the same loss curve (checked against autograd in the tests).

It applies when nothing needs autograd: SGD (with or without momentum), Adam or AdamW (``fastoptim.py``),
no schedule, dropout, L1 or clipping, on the CPU, and an activation with a cheap NumPy derivative.
:func:`refusal` says why not otherwise, and the run then uses the autograd step: ``fit`` takes the step
function as a parameter, and the run picks this one only with one of this module's optimisers. The NumPy
optimisers stand in for ``torch.optim``'s with the same ``state_dict`` layout, so checkpoints and
``--resume`` treat both alike.
"""

from __future__ import annotations

import numpy as np
import torch

from .backprop import ACTIVATION_FUNCTIONS, loss_and_gradient
from .config import Config, MlplabError, TrainingConfig
from .fastoptim import NumpyAdam, NumpyOptimizer, PlainSGD

__all__ = ["EVAL_ROWS", "FastPathRefused", "NumpyAdam", "NumpyOptimizer", "PlainSGD", "applies", "build_optimizer",
           "numpy_step", "refusal"]

OPTIMIZERS = ("sgd", "adam", "adamw")
EVAL_ROWS = 8192
"""The largest evaluation split the step's own NumPy forward scores (``step.logits_of``): where the
per-call overhead is what costs. A larger one goes through torch's chunked inference path."""


class FastPathRefused(MlplabError):
    """The NumPy step was asked to serve a case it cannot (it says which)."""


def refusal(config: Config, device: torch.device, *, distributed: bool = False) -> str | None:
    """Why the NumPy fast path cannot train this run, or None when it can.

    It updates the parameters in place outside autograd, so anything that needs autograd or another
    device is refused; so is a distributed run (DistributedDataParallel averages gradients in autograd's
    backward hooks, which the NumPy step never calls)."""
    training, model = config.training, config.model
    distributed = distributed or (torch.distributed.is_available() and torch.distributed.is_initialized())
    reasons = [
        (not training.fast_path, "turned off (training.fast_path = false)"),
        (distributed, "a distributed run: DDP averages gradients in autograd, which the NumPy step bypasses"),
        (device.type != "cpu", f"the device is {device.type}; the NumPy step runs on the CPU"),
        (training.optimizer not in OPTIMIZERS,
         f"optimizer {training.optimizer}: only {', '.join(OPTIMIZERS)} are written in NumPy"),
        (training.schedule != "none", f"schedule {training.schedule} needs a torch optimiser"),
        (training.l1 != 0, "the L1 penalty is applied through autograd"),
        (training.clip_grad is not None, "gradient clipping is applied through autograd"),
        (model.dropout != 0, "dropout is applied through autograd"),
        (model.activation == "gelu", "gelu has no cheap NumPy derivative"),
    ]
    return next((reason for refused, reason in reasons if refused), None)


def applies(config: Config, device: torch.device, *, distributed: bool = False) -> bool:
    """Whether :func:`refusal` lets the fast path train this run."""
    return refusal(config, device, distributed=distributed) is None


def build_optimizer(model: torch.nn.Module, config: TrainingConfig) -> NumpyOptimizer:
    """The NumPy optimiser for ``config.optimizer`` (one of OPTIMIZERS), with torch's defaults."""
    params, lr, decay = list(model.parameters()), config.learning_rate, config.weight_decay
    if config.optimizer == "sgd":
        return PlainSGD(params, lr, decay, config.momentum, config.nesterov)
    return NumpyAdam(params, lr, decay, decoupled=config.optimizer == "adamw")


def numpy_step(model: torch.nn.Module, optimizer: NumpyOptimizer, x_train: torch.Tensor, y_train: torch.Tensor,
               task: str):
    """A function ``step(x, y, w) -> (weighted loss sum, correct count)`` for one batch; the full
    training set (``x is x_train``) is prepared once.

    At this size each NumPy call costs about a microsecond whatever it computes, so the step makes few:
    each layer's weight and bias live side by side in one matrix [W | b] (the model's tensors become
    views of it), and each layer's input gets a column of ones, so z = [a, 1] [W | b]^T is one product
    and so is the gradient dL/d[W | b] = dz^T [a, 1]; all layers sit in one flat array, so the SGD
    update is a few calls on one flat array. Results go into buffers kept between epochs.

    Raises :class:`FastPathRefused` for what it cannot serve: an optimiser other than this module's,
    tensors off the CPU, or a model with dropout.
    """
    if not isinstance(optimizer, NumpyOptimizer):
        raise FastPathRefused(f"the NumPy step updates parameters with its own optimisers, not "
                              f"{type(optimizer).__name__}; use training.autograd_step")
    if x_train.device.type != "cpu" or next(model.parameters()).device.type != "cpu":
        raise FastPathRefused("the NumPy step runs on the CPU; the data or the model is on "
                              f"{x_train.device.type}/{next(model.parameters()).device.type}")
    if getattr(model, "uses_dropout", False):
        raise FastPathRefused("the NumPy step has no dropout; use training.autograd_step")
    flat, layers = _augmented_parameters(model)
    transposed = [layer.T for layer in layers]  # [W | b]^T, the operand of each forward product (views)
    weights = [layer[:, :-1] for layer in layers]  # W without the bias column (views)
    gradient = np.zeros_like(flat)
    gradients = _augmented_views(gradient, model)
    activation = ACTIVATION_FUNCTIONS[model.activation_name]
    is_relu = model.activation_name == "relu"
    zero = np.zeros((), flat.dtype)  # a Python 0 would be converted on every call: 4.4 against 2.4 µs
    last = len(layers) - 1
    optimizer.bind(flat, lambda array: [part for layer in _augmented_views(array, model)
                                        for part in (layer[:, :-1], layer[:, -1])])
    buffers: dict[int, _Buffers] = {}  # per batch size, kept between epochs
    full: list[_FullBatch] = []  # the whole training set, prepared on first use

    def forward(rows: _Buffers) -> np.ndarray:
        """z = [a_prev, 1] [W | b]^T, a = f(z) written into the next layer's input [a, 1]; the logits."""
        inputs, sums = rows.inputs, rows.sums
        for k in range(last):
            z = np.dot(inputs[k], transposed[k], out=sums[k])
            if is_relu:
                np.maximum(z, zero, out=rows.plain[k + 1])
            else:
                rows.plain[k + 1][...] = activation.function(z)
        return np.dot(inputs[last], transposed[last], out=sums[last])

    def backward(rows: _Buffers, dz: np.ndarray) -> None:
        """dL/d[W | b] = dz^T [a_prev, 1] into ``gradients``, dz_prev = (dz W) * f'(z_prev)."""
        inputs, sums, plain = rows.inputs, rows.sums, rows.plain
        for k in range(last, 0, -1):
            np.dot(dz.T, inputs[k], out=gradients[k])
            dz = np.dot(dz, weights[k], out=rows.back[k - 1])
            if is_relu:  # f'(z) = (z > 0); a masked copyto or heaviside is as fast on 80 rows, 10x slower on 1024
                np.multiply(dz, np.greater(sums[k - 1], zero, out=rows.masks[k - 1]), out=dz)
            else:
                np.multiply(dz, activation.derivative(sums[k - 1], plain[k]), out=dz)
        np.dot(dz.T, inputs[0], out=gradients[0])

    def rows_for(x: np.ndarray) -> _Buffers:
        """The buffers for this batch size, with [x, 1] in the first input."""
        if len(x) not in buffers:
            buffers[len(x)] = _Buffers(len(x), layers, flat.dtype)
        rows = buffers[len(x)]
        rows.plain[0][...] = x
        return rows

    def full_batch_step() -> tuple[float, int]:
        """The tutorial's case, an epoch's one step on the whole (unweighted) training set; a binary task
        with 0/1 targets takes about half the NumPy calls of the general loss (see _FullBatch)."""
        if not full:
            full.append(_FullBatch(x_train.numpy(), y_train.numpy(), task, layers, flat.dtype))
        batch = full[0]
        logits = forward(batch.rows)
        if batch.sign is None:
            loss, dz = loss_and_gradient(logits, batch.y, task)
            correct = _correct(logits, batch.labels, task)
            backward(batch.rows, dz)
            optimizer.update(gradient, 1.0)
            return loss * batch.n, correct
        signed, softplus = batch.signed, batch.softplus
        np.multiply(batch.logit, batch.sign, out=signed)  # s z, with s = 1 - 2 y
        np.logaddexp(zero, signed, out=softplus)  # each row's loss: softplus(s z)
        loss = float(np.add.reduce(softplus))
        correct = np.count_nonzero(np.less(signed, batch.tie, out=batch.hit))
        np.exp(np.subtract(signed, softplus, out=signed), out=signed)  # sigmoid(s z)
        np.multiply(signed, batch.sign, out=batch.dz_column)  # n dL/dz = sigmoid(z) - y = s sigmoid(s z)
        backward(batch.rows, batch.dz)
        optimizer.update(gradient, batch.inverse_n)
        return loss, correct

    def step(x_batch: torch.Tensor, y_batch: torch.Tensor, w_batch: torch.Tensor | None) -> tuple[float, int]:
        if x_batch is x_train and w_batch is None:
            return full_batch_step()
        rows, y = rows_for(x_batch.numpy()), y_batch.numpy()
        w = None if w_batch is None else w_batch.numpy()
        n = len(y)
        logits = forward(rows)
        # loss and dL/dlogits (times n for the unweighted binary loss: the update divides by n)
        scale = 1.0
        if task == "binary" and w is None:
            loss, dz = _binary_loss_and_gradient(logits, y)
            scale = 1.0 / n
        else:
            loss, dz = loss_and_gradient(logits, y, task, w)
        correct = _correct(logits, y >= 0.5 if task == "binary" else y, task)
        backward(rows, dz)
        optimizer.update(gradient, scale)  # every parameter at once; the model's tensors are views of flat
        return loss * (n if w is None else float(w.sum())), correct

    evaluated: dict[int, tuple[torch.Tensor, _Buffers]] = {}

    def logits_of(x_tensor: torch.Tensor) -> np.ndarray | None:
        """The network's logits for rows ``x_tensor`` (an evaluation split), in buffers kept per split;
        None for a split of more than EVAL_ROWS rows, which the chunked torch inference path serves as
        fast without keeping buffers of the split's size."""
        if len(x_tensor) > EVAL_ROWS:
            return None
        if id(x_tensor) not in evaluated:  # the tensor is kept in the entry, so its id stays unique
            rows = _Buffers(len(x_tensor), layers, flat.dtype, backward=False)
            rows.plain[0][...] = x_tensor.numpy()
            evaluated[id(x_tensor)] = (x_tensor, rows)
        return forward(evaluated[id(x_tensor)][1])

    step.logits_of = logits_of
    return step


class _Buffers:
    """Arrays for one batch size, kept between epochs: each layer's input [a, 1] (the ones column set
    once) and its first columns a (``plain``), each layer's weighted sums z, and the backward pass's
    dL/da and ReLU masks."""

    def __init__(self, n: int, layers: list[np.ndarray], dtype: np.dtype, backward: bool = True):
        self.inputs = [np.ones((n, layer.shape[1]), dtype) for layer in layers]
        self.plain = [buffer[:, :-1] for buffer in self.inputs]
        self.sums = [np.empty((n, layer.shape[0]), dtype) for layer in layers]
        hidden = layers[1:] if backward else []
        self.back = [np.empty((n, layer.shape[1] - 1), dtype) for layer in hidden]
        self.masks = [np.empty((n, layer.shape[1] - 1), bool) for layer in hidden]


class _FullBatch:
    """The whole training set as the full-batch step uses it every epoch, prepared once.

    For a binary task whose targets are all 0 or 1 the loss softplus(z) - y z is softplus(s z) with
    s = 1 - 2 y, its gradient sigmoid(z) - y is s sigmoid(s z), and a row is right when s z < 0 (z >= 0
    for y = 1: s z <= 0, which is s z < ``tie``, the smallest positive float): with s kept, an epoch's
    loss, gradient and correct count are seven NumPy calls instead of eleven. At the tutorial's size each
    call costs about a microsecond whatever it computes, so the count is the cost."""

    def __init__(self, x: np.ndarray, y: np.ndarray, task: str, layers: list[np.ndarray], dtype: np.dtype):
        self.n, self.inverse_n, self.y = len(x), 1.0 / len(x), y
        self.rows = _Buffers(self.n, layers, dtype)
        self.rows.plain[0][...] = x
        self.labels = y >= 0.5 if task == "binary" else y  # what a correct prediction equals
        self.sign = None
        if task == "binary" and bool(np.all((y == 0) | (y == 1))):
            self.sign = (1 - 2 * y).astype(dtype)
            self.tie = np.where(y == 1, np.finfo(dtype).smallest_subnormal, 0).astype(dtype)
            self.logit = self.rows.sums[-1][:, 0]
            self.signed, self.softplus = np.empty(self.n, dtype), np.empty(self.n, dtype)
            self.hit = np.empty(self.n, bool)
            self.dz = np.empty((self.n, 1), dtype)
            self.dz_column = self.dz[:, 0]


def _augmented_parameters(model: torch.nn.Module) -> tuple[np.ndarray, list[np.ndarray]]:
    """Move every layer's weight and bias into one flat tensor, laid out layer by layer as [W | b]
    matrices; the parameters become views of it (values, names and state_dict keys are unchanged).
    Returns the flat NumPy array and the per-layer [W | b] views."""
    flat_tensor = torch.cat([torch.cat([layer.weight.detach(), layer.bias.detach()[:, None]], dim=1).reshape(-1)
                             for layer in model.linears])
    offset = 0
    for layer in model.linears:
        fan_out, fan_in = layer.weight.shape
        augmented = flat_tensor[offset:offset + fan_out * (fan_in + 1)].view(fan_out, fan_in + 1)
        layer.weight.data, layer.bias.data = augmented[:, :fan_in], augmented[:, fan_in]
        offset += augmented.numel()
    flat = flat_tensor.numpy()
    return flat, _augmented_views(flat, model)


def _augmented_views(flat: np.ndarray, model: torch.nn.Module) -> list[np.ndarray]:
    views, offset = [], 0
    for layer in model.linears:
        fan_out, fan_in = layer.weight.shape
        views.append(flat[offset:offset + fan_out * (fan_in + 1)].reshape(fan_out, fan_in + 1))
        offset += fan_out * (fan_in + 1)
    return views


def _binary_loss_and_gradient(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """backprop.loss_and_gradient for binary tasks without weights, in fewer NumPy calls, returning
    n dL/dz: softplus(z) = log(1 + e^z), loss = mean(softplus(z) - z y), sigmoid(z) = e^(z - softplus(z))."""
    z = logits[:, 0]
    softplus = np.logaddexp(0, z)
    loss = (softplus.sum() - z @ y) / len(z)
    probability = np.exp(z - softplus)
    return float(loss), np.subtract(probability, y, out=probability)[:, None]


def _correct(logits: np.ndarray, labels: np.ndarray, task: str) -> int:
    if task == "binary":
        return int(np.count_nonzero((logits[:, 0] >= 0) == labels))
    if task == "multiclass":
        return int(np.count_nonzero(logits.argmax(axis=1) == labels))
    return 0
