"""One sample through the network, forward and backward, with every number shown: the tutorial's
backpropagation section made concrete.

Forward: each layer's input, weighted sum z = W a + b and activation. Then the loss, the output error
dL/dz, and backward, layer by layer, the gradient of every weight and bias by the chain rule
(``backprop.py``, in float64 NumPy), checked against torch autograd. Last, the update one SGD step
would apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .backprop import ACTIVATION_FUNCTIONS, backward, forward, loss_and_gradient
from .config import MlplabError
from .model import compute_loss
from .preprocess import as_table

__all__ = ["Explanation", "explain", "render"]

LOSS_NAMES = {"binary": "binary cross-entropy on sigmoid(z)", "multiclass": "cross-entropy on softmax(z)",
              "regression": "squared error"}
OUTPUT_ERRORS = {"binary": "sigmoid(z) - y", "multiclass": "softmax(z) - onehot(y)", "regression": "2 (z - y)"}


@dataclass
class Explanation:
    """Everything :func:`render` prints, as arrays (float64)."""

    raw_input: list[Any]
    encoded_input: np.ndarray
    encoded_differs: bool  # one-hot columns or scaling make a0 differ from the raw input
    label: Any
    label_given: bool
    target: np.ndarray
    task: str
    activation: str
    layers: list[tuple[np.ndarray, np.ndarray]]
    inputs: list[np.ndarray]  # a_prev of each layer
    sums: list[np.ndarray]  # z of each layer
    loss: float
    output_error: np.ndarray
    gradients: list[tuple[np.ndarray, np.ndarray]]
    autograd_difference: float
    learning_rate: float

    @property
    def updated(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(w - self.learning_rate * dw, b - self.learning_rate * db)
                for (w, b), (dw, db) in zip(self.layers, self.gradients)]


def explain(model: Any, row: Any, label: Any = None, learning_rate: float | None = None) -> Explanation:
    """Explain ``model`` (a TrainedModel) on one input ``row``. ``label`` is the target (a class label as
    in training, or a value for regression); without it the model's own prediction is used."""
    table = as_table([row] if not isinstance(row, dict) else row, model.feature_names)
    encoded = model.preprocessor.transform(table, np.float64)
    label_given = label is not None
    if label is None:
        label = model.predict(table)[0]
    target = _target(model, label)
    layers = [(_float64(layer.weight), _float64(layer.bias)) for layer in model.module.linears]
    activation = model.module.activation_name
    result = forward(layers, encoded, activation)
    loss, output_error = loss_and_gradient(result.logits, target, model.task)
    gradients = backward(layers, result, output_error, activation)
    if learning_rate is None:
        learning_rate = float(model.meta.get("config", {}).get("training", {}).get("learning_rate", 0.03))
    raw = list(row.values()) if isinstance(row, dict) else list(np.ravel(np.asarray(row, dtype=object)))
    differs = model.preprocessor.changes_input
    return Explanation(raw, encoded[0], differs, label, label_given, target, model.task, activation, layers,
                       result.inputs, result.sums, loss, output_error, gradients,
                       autograd_difference(model, encoded, target, gradients), learning_rate)


def _float64(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().double().numpy().copy()


def _target(model: Any, label: Any) -> np.ndarray:
    if model.task == "regression":
        try:
            value = float(label)
            scaling = model.meta.get("target_scaling")  # the network learned the standardised target
            return np.array([value if not scaling else (value - scaling[0]) / scaling[1]])
        except (TypeError, ValueError):
            raise MlplabError(f"--label must be a number for a regression model, got {label!r}") from None
    matches = [i for i, known in enumerate(model.classes) if str(known) == str(label)]
    if not matches:
        raise MlplabError(f"--label {label!r} is not one of the model's classes: "
                          f"{', '.join(map(str, model.classes))}")
    return np.array([float(matches[0])]) if model.task == "binary" else np.array([matches[0]])


def autograd_difference(model: Any, encoded: np.ndarray, target: np.ndarray,
                        gradients: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """The largest |hand-derived - autograd| over every weight and bias gradient (float64)."""
    import copy

    module = copy.deepcopy(model.module).double().eval()
    module.zero_grad()
    y = torch.as_tensor(target, dtype=torch.long if model.task == "multiclass" else torch.float64)
    compute_loss(module(torch.as_tensor(encoded)), y, model.task).backward()
    differences = [max(float(np.abs(dw - layer.weight.grad.numpy()).max()),
                       float(np.abs(db - layer.bias.grad.numpy()).max()))
                   for layer, (dw, db) in zip(module.linears, gradients)]
    return max(differences)


def _vector(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{value:+.4f}" for value in np.ravel(values)) + "]"


def _matrix(name: str, values: np.ndarray, indent: str = "    ") -> list[str]:
    lines = [f"{indent}{name} (rows: units of this layer, columns: inputs)"]
    lines += [f"{indent}  unit {row + 1:>2}: {_vector(values[row])}" for row in range(values.shape[0])]
    return lines


def render(explanation: Explanation) -> str:
    """The explanation as readable text tables."""
    e = explanation
    formula = ACTIVATION_FUNCTIONS[e.activation].formula
    lines = [f"Input {', '.join(map(str, e.raw_input))}"]
    if e.encoded_differs:
        lines.append(f"  encoded (one-hot and scaling, as in training) as a0 = {_vector(e.encoded_input)}")
    lines += ["", "FORWARD PASS: z = W a + b, then a = f(z)"]
    last = len(e.layers) - 1
    for k, (weight, bias) in enumerate(e.layers):
        kind = f"hidden layer {k + 1}, f = {e.activation}: {formula}" if k < last else "output layer (logits)"
        lines.append(f"  Layer {k + 1}: Linear({weight.shape[1]} -> {weight.shape[0]}), {kind}")
        lines += _matrix("W", weight)
        lines.append(f"    b            = {_vector(bias)}")
        lines.append(f"    a{k} (input)   = {_vector(e.inputs[k])}")
        lines.append(f"    z = W a{k} + b = {_vector(e.sums[k])}")
        if k < last:
            lines.append(f"    a{k + 1} = f(z)     = {_vector(e.inputs[k + 1])}")
    lines += ["", _output_lines(e), "", "BACKWARD PASS (chain rule, last layer first)",
              f"  output error dL/dz = {OUTPUT_ERRORS[e.task]} = {_vector(e.output_error)}"]
    for k in range(last, -1, -1):
        weight_gradient, bias_gradient = e.gradients[k]
        lines.append(f"  Layer {k + 1}: dL/dW = dL/dz (a{k})^T, dL/db = dL/dz")
        lines += _matrix("dL/dW", weight_gradient)
        lines.append(f"    dL/db = {_vector(bias_gradient)}")
        if k > 0:
            passed = e.layers[k][0].T @ bias_gradient  # for one sample dL/db is dL/dz itself
            lines.append(f"    passed back: dL/da{k} = W^T dL/dz = {_vector(passed)}")
            lines.append(f"                 dL/dz{k} = dL/da{k} * f'(z{k}) = {_vector(e.gradients[k - 1][1])}")
    lines += ["", f"Check: the largest difference from torch autograd over every gradient is "
                  f"{e.autograd_difference:.1e}", "",
              f"ONE SGD STEP with learning rate {e.learning_rate:g}: W <- W - {e.learning_rate:g} dL/dW, "
              f"b <- b - {e.learning_rate:g} dL/db"]
    for k, (weight, bias) in enumerate(e.updated):
        lines += [f"  Layer {k + 1}:"] + _matrix("new W", weight) + [f"    new b = {_vector(bias)}"]
    return "\n".join(lines)


def _output_lines(e: Explanation) -> str:
    z = e.sums[-1][0]
    source = "given" if e.label_given else "the model's own prediction; pass --label to choose"
    if e.task == "binary":
        probability = 1 / (1 + np.exp(-z[0]))
        head = f"OUTPUT sigmoid(z) = P(label 1) = {probability:.6f}"
    elif e.task == "multiclass":
        shifted = np.exp(z - z.max())
        head = f"OUTPUT softmax(z) = {_vector(shifted / shifted.sum())}"
    else:
        head = f"OUTPUT prediction z = {z[0]:+.6f}"
    return f"{head}\nLOSS ({LOSS_NAMES[e.task]}) with label {e.label} ({source}): L = {e.loss:.6f}"
