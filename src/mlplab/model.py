"""The network: a plain MLP built from config, and the one registry of activation functions.

Each layer multiplies by a weight matrix, adds a bias and applies an activation; the last layer gives
*logits*. The output function (sigmoid for binary, softmax for multiclass, identity for regression) is
applied to them at prediction (``metrics.probabilities_from_logits``), so training can use the stable losses
(``BCEWithLogitsLoss``, ``CrossEntropyLoss``) while ``predict_proba`` still returns probabilities.

Layers are named ``linear_1``, ``linear_2``, ... as in the tutorial's ``NeuralNet``, so a tutorial model
and an mlplab model share ``state_dict`` keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ACTIVATIONS", "MLP", "build_mlp", "compute_loss", "mlp_from_state_dict"]

# name -> module factory. The one place activations are registered: config validation, plots and
# `mlplab explain` all read this table.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus,
    "identity": nn.Identity,
}

OUTPUT_FUNCTIONS = {"binary": "sigmoid", "multiclass": "softmax", "regression": "identity"}


class MLP(nn.Module):
    """Linear -> activation (-> dropout) for each hidden layer, then a final Linear giving logits.

    Examples
    --------
    >>> import torch
    >>> from mlplab import MLP
    >>> _ = torch.manual_seed(0)
    >>> model = MLP(2, [5], 1)  # the tutorial's NeuralNet(2, 5), without the final sigmoid
    >>> list(model.state_dict())
    ['linear_1.weight', 'linear_1.bias', 'linear_2.weight', 'linear_2.bias']
    >>> model(torch.zeros(3, 2)).shape
    torch.Size([3, 1])
    """

    def __init__(self, n_inputs: int, hidden_sizes: Sequence[int], n_outputs: int, activation: str = "relu",
                 dropout: float = 0.0, init: str = "default", dtype: str = "float32"):
        super().__init__()
        self.sizes = [int(n_inputs), *(int(size) for size in hidden_sizes), int(n_outputs)]
        self.activation_name = activation
        # Layers are created in order, so the same torch seed gives the tutorial's initial weights.
        for number, (fan_in, fan_out) in enumerate(zip(self.sizes, self.sizes[1:]), start=1):
            self.add_module(f"linear_{number}", nn.Linear(fan_in, fan_out))
        self.activation = ACTIVATIONS[activation]()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        if init != "default":
            initialise(self, init)
        # Weights are drawn in float32 whatever the dtype, so a seed gives the same start in both.
        self.to(getattr(torch, dtype))

    @property
    def uses_dropout(self) -> bool:
        return isinstance(self.dropout, nn.Dropout)

    @property
    def linears(self) -> list[nn.Linear]:
        return [getattr(self, f"linear_{number}") for number in range(1, len(self.sizes))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *hidden, last = self.linears
        for layer in hidden:
            x = self.dropout(self.activation(layer(x)))
        return last(x)


def build_mlp(architecture: Mapping[str, Any], init: str = "default") -> MLP:
    """The one builder of an MLP from its description: the ``architecture`` a checkpoint's meta holds
    (``n_inputs``, ``hidden_sizes``, ``n_outputs``, ``activation``; ``dropout`` and ``dtype`` optional).
    A new run, a loaded run and a plain state_dict all come through here."""
    return MLP(architecture["n_inputs"], architecture["hidden_sizes"], architecture["n_outputs"],
               architecture["activation"], architecture.get("dropout", 0.0), init,
               architecture.get("dtype", "float32"))


def initialise(model: MLP, scheme: str) -> None:
    """Re-draw every weight with ``scheme`` (xavier_* or kaiming_*); biases start at zero."""
    draw = getattr(nn.init, scheme + "_")
    with torch.no_grad():
        for layer in model.linears:
            if scheme.startswith("kaiming"):
                draw(layer.weight, nonlinearity="relu")
            else:
                draw(layer.weight)
            layer.bias.zero_()


def compute_loss(logits: torch.Tensor, target: torch.Tensor, task: str,
                 weight: torch.Tensor | None = None) -> torch.Tensor:
    """The task's loss on logits, the stable form: for binary it equals the tutorial's ``BCELoss`` on
    sigmoid outputs. (n, 1) logits meet (n,) targets as in ``criterion(output.squeeze(), y)``.
    With ``weight`` (one per row), the weighted mean: sum(w * loss) / sum(w)."""
    reduction = "mean" if weight is None else "none"
    if task == "binary":
        losses = F.binary_cross_entropy_with_logits(logits.squeeze(-1), target, reduction=reduction)
    elif task == "multiclass":
        losses = F.cross_entropy(logits, target, reduction=reduction)
    else:
        losses = F.mse_loss(logits.squeeze(-1), target, reduction=reduction)
    return losses if weight is None else (losses * weight).sum() / weight.sum()


def mlp_from_state_dict(state_dict: dict[str, torch.Tensor], activation: str = "relu") -> MLP:
    """Rebuild an MLP from a plain state_dict (the tutorial's ``model.pt``): layer sizes come from the
    weight shapes, taken in the order saved; each Linear needs a 2-D weight and a 1-D bias."""
    tensors = list(state_dict.items())
    if not tensors or len(tensors) % 2:
        raise ValueError("expected pairs of weight and bias tensors, one pair per Linear layer")
    sizes: list[int] = []
    for (weight_name, weight), (bias_name, bias) in zip(tensors[::2], tensors[1::2]):
        if weight.ndim != 2 or bias.ndim != 1 or bias.shape[0] != weight.shape[0]:
            raise ValueError(f"{weight_name}/{bias_name} are not a Linear layer's weight and bias "
                             f"(shapes {tuple(weight.shape)}, {tuple(bias.shape)})")
        if sizes and sizes[-1] != weight.shape[1]:
            raise ValueError(f"{weight_name} takes {weight.shape[1]} inputs but the layer before gives "
                             f"{sizes[-1]}")
        sizes += [weight.shape[1]] if not sizes else []
        sizes.append(weight.shape[0])
    dtype = "float64" if tensors[0][1].dtype == torch.float64 else "float32"
    model = build_mlp({"n_inputs": sizes[0], "hidden_sizes": sizes[1:-1], "n_outputs": sizes[-1],
                       "activation": activation, "dtype": dtype})
    model.load_state_dict(dict(zip(model.state_dict(), (tensor for _, tensor in tensors))))
    return model
