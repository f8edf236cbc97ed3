"""Backpropagation by hand, in NumPy: the chain rule, one small function per layer type, activation and
loss. ``mlplab explain`` prints what these compute for one sample (checked against torch autograd), and
the training loop's fast path uses the very same functions for tiny networks, where PyTorch's per-call
overhead costs far more than the arithmetic.

A network is a list of ``(W, b)`` pairs with ``W`` of shape (out, in), as in ``nn.Linear``. For a batch
``x`` of shape (n, in), layer k computes ``z = a_prev @ W.T + b`` and ``a = f(z)``; the last layer's
``z`` are the logits. Backward, from the loss gradient ``dL/dz`` of the last layer::

    dL/dW = (dL/dz).T @ a_prev      dL/db = sum over rows of dL/dz      dL/da_prev = dL/dz @ W
    dL/dz_prev = dL/da_prev * f'(z_prev)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["ACTIVATION_FUNCTIONS", "Pass", "backward", "forward", "loss_and_gradient"]

SELU_SCALE, SELU_ALPHA = 1.0507009873554805, 1.6732632423543772
LEAKY_SLOPE = 0.01  # torch.nn.LeakyReLU's default


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0, -z)).astype(z.dtype, copy=False)


_erf = np.vectorize(math.erf, otypes=[float])


def _gelu(z: np.ndarray) -> np.ndarray:
    return (z * 0.5 * (1.0 + _erf(z / math.sqrt(2.0)))).astype(z.dtype, copy=False)


def _gelu_derivative(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    cdf = 0.5 * (1.0 + _erf(z / math.sqrt(2.0)))
    pdf = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return (cdf + z * pdf).astype(z.dtype, copy=False)


def _softplus(z: np.ndarray) -> np.ndarray:
    return np.where(z > 20, z, np.log1p(np.exp(np.minimum(z, 20)))).astype(z.dtype, copy=False)


@dataclass(frozen=True)
class Activation:
    """f(z) and its derivative f'(z), given z and a = f(z) (whichever is cheaper to use)."""

    function: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray, np.ndarray], np.ndarray]
    formula: str


# The same names as model.ACTIVATIONS, with torch's default parameters.
ACTIVATION_FUNCTIONS: dict[str, Activation] = {
    "relu": Activation(lambda z: np.maximum(z, 0), lambda z, a: np.sign(a), "max(0, z)"),  # a >= 0: sign is 1 or 0
    "leaky_relu": Activation(lambda z: np.where(z > 0, z, LEAKY_SLOPE * z),
                             lambda z, a: np.where(z > 0, 1.0, LEAKY_SLOPE).astype(z.dtype),
                             "z if z > 0 else 0.01 z"),
    "elu": Activation(lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
                      lambda z, a: np.where(z > 0, 1.0, a + 1.0).astype(z.dtype), "z if z > 0 else e^z - 1"),
    "selu": Activation(lambda z: SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0))),
                       lambda z, a: np.where(z > 0, SELU_SCALE, a + SELU_SCALE * SELU_ALPHA).astype(z.dtype),
                       "1.0507 (z if z > 0 else 1.6733 (e^z - 1))"),
    "gelu": Activation(_gelu, _gelu_derivative, "z Phi(z)"),
    "silu": Activation(lambda z: z * _sigmoid(z),
                       lambda z, a: (_sigmoid(z) * (1 + z * (1 - _sigmoid(z)))).astype(z.dtype), "z sigmoid(z)"),
    "tanh": Activation(np.tanh, lambda z, a: 1 - a * a, "tanh(z)"),
    "sigmoid": Activation(_sigmoid, lambda z, a: a * (1 - a), "1 / (1 + e^-z)"),
    "softplus": Activation(_softplus, lambda z, a: np.where(z > 20, 1.0, _sigmoid(z)).astype(z.dtype),
                           "log(1 + e^z)"),
    "identity": Activation(lambda z: z, lambda z, a: np.ones_like(z), "z"),
}


@dataclass
class Pass:
    """What a forward pass keeps for the backward pass: each layer's input, weighted sum and output."""

    inputs: list[np.ndarray]  # a_prev of each layer (inputs[0] is x)
    sums: list[np.ndarray]  # z of each layer; sums[-1] are the logits

    @property
    def logits(self) -> np.ndarray:
        return self.sums[-1]


def forward(layers: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray, activation: str) -> Pass:
    """Run x through the network, keeping every layer's input and weighted sum."""
    f = ACTIVATION_FUNCTIONS[activation].function
    inputs, sums = [x], []
    for index, (weight, bias) in enumerate(layers):
        z = inputs[-1] @ weight.T + bias
        sums.append(z)
        if index < len(layers) - 1:
            inputs.append(f(z))
    return Pass(inputs, sums)


def loss_and_gradient(logits: np.ndarray, target: np.ndarray, task: str,
                      weight: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """The loss (mean over rows, or weighted mean) and its gradient with respect to the logits.

    binary: BCE on sigmoid(z), in the stable form max(z,0) - z y + log(1 + e^-|z|); dL/dz = (sigmoid(z) - y) / n
    multiclass: cross-entropy of softmax(z); dL/dz = (softmax(z) - onehot(y)) / n
    regression: mean squared error; dL/dz = 2 (z - y) / n
    """
    n = len(logits)
    scale = np.full(n, 1.0 / n, dtype=logits.dtype) if weight is None else (weight / weight.sum()).astype(
        logits.dtype)
    if task == "multiclass":
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        rows = np.arange(n)
        losses = -log_probabilities[rows, target]
        gradient = np.exp(log_probabilities)
        gradient[rows, target] -= 1
        return float(scale @ losses), gradient * scale[:, None]
    z = logits[:, 0]
    if task == "binary":
        losses = np.maximum(z, 0) - z * target + np.log1p(np.exp(-np.abs(z)))
        gradient = _sigmoid(z) - target
    else:
        error = z - target
        losses, gradient = error * error, 2 * error
    return float(scale @ losses), (gradient * scale)[:, None]


def backward(layers: list[tuple[np.ndarray, np.ndarray]], result: Pass, logit_gradient: np.ndarray,
             activation: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(dL/dW, dL/db) for every layer, from the output error back to the first layer."""
    derivative = ACTIVATION_FUNCTIONS[activation].derivative
    gradients: list[tuple[np.ndarray, np.ndarray]] = []
    dz = logit_gradient
    for index in range(len(layers) - 1, -1, -1):
        weight, _ = layers[index]
        a_prev = result.inputs[index]
        gradients.append((dz.T @ a_prev, dz.sum(axis=0)))
        if index > 0:
            dz = (dz @ weight) * derivative(result.sums[index - 1], a_prev)
    return gradients[::-1]
