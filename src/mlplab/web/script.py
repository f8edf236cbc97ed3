"""'Export as Python': a runnable script in the seed tutorial's plain-PyTorch style that reproduces a
playground run (same data, seed, network, loss, optimiser and loop) and prints its final loss.

The points are written into the script as numbers (what the page drew, edits included), so it needs
nothing but NumPy and PyTorch. Built-in data keep their raw x1, x2 and the script computes the input
features itself; an upload's rows are written as mlplab encoded them (its own one-hot and scaling).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import parse_input_feature
from .sessions import Build

__all__ = ["python_script"]

ACTIVATION_CLASSES = {"relu": "ReLU", "leaky_relu": "LeakyReLU", "elu": "ELU", "selu": "SELU", "gelu": "GELU",
                      "silu": "SiLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "softplus": "Softplus",
                      "identity": "Identity"}
LOSSES = {"binary": "nn.BCEWithLogitsLoss()  # the tutorial's BCELoss on sigmoid outputs, in its stable form",
          "multiclass": "nn.CrossEntropyLoss()  # softmax + negative log-likelihood", "regression": "nn.MSELoss()"}


def _rows(values: np.ndarray) -> str:
    values = np.asarray(values)
    if values.ndim == 1:
        return "[" + ", ".join(repr(float(v)) if values.dtype.kind == "f" else str(int(v)) for v in values) + "]"
    return "[\n" + "".join(f"    {_rows(row)},\n" for row in values) + "]"


def _feature_expression(term: str) -> str:
    kind, names = parse_input_feature(term)
    return {"column": "{}", "square": "{} ** 2", "product": "{} * {}", "sin": "np.sin({})"}[kind].format(*names)


def _optimizer(build: Build) -> str:
    training = build.config.training
    lr, decay = training.learning_rate, training.weight_decay
    kinds = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop"}
    return f"torch.optim.{kinds[training.optimizer]}(model.parameters(), lr={lr!r}, weight_decay={decay!r})"


def python_script(build: Build) -> str:
    """The script for the run as it stands (``build.state.epoch`` epochs)."""
    config, dataset, settings = build.config, build.dataset, build.settings
    task, epochs = dataset.task, build.state.epoch
    training = config.training
    if settings.dataset == "upload":
        data_lines = [
            f"# {dataset.source.get('name')}: the rows as mlplab encoded them for the network",
            f"# (columns: {', '.join(dataset.preprocessor.column_names)}; one-hot and standard scaling fitted",
            "# on the training rows), and the targets as class indices or values",
            f"x_train = np.array({_rows(dataset.x_train.astype(np.float64))})",
            f"x_test = np.array({_rows(dataset.x_test.astype(np.float64))})",
            "inputs_train, inputs_test = x_train, x_test"]
    else:
        terms = dataset.preprocessor.column_names
        data_lines = [
            f"# {dataset.source.get('name')}: the points the playground drew (x1, x2) and their labels",
            f"x_train = np.array({_rows(np.stack([build.raw['train']['x1'], build.raw['train']['x2']], axis=1))})",
            f"x_test = np.array({_rows(np.stack([build.raw['test']['x1'], build.raw['test']['x2']], axis=1))})",
            "",
            "",
            "def input_features(x):",
            f'    """The network\'s inputs: {", ".join(terms)}."""',
            "    x1, x2 = x[:, 0], x[:, 1]",
            f"    return np.stack([{', '.join(_feature_expression(term) for term in terms)}], axis=1)",
            "",
            "",
            "inputs_train, inputs_test = input_features(x_train), input_features(x_test)"]
    label_type = "torch.long" if task == "multiclass" else "torch.float32"
    targets = [f"y_train = torch.tensor({_rows(dataset.y_train)}, dtype={label_type})",
               f"y_test = torch.tensor({_rows(dataset.y_test)}, dtype={label_type})"]
    sizes = build.state.model.sizes
    dropout = config.model.dropout
    batch = training.batch_size
    lines = [
        '"""A run of the mlplab playground in plain PyTorch, written as the tutorial writes its program.',
        "",
        f"{dataset.describe()}; network {' -> '.join(map(str, sizes))} ({config.model.activation});",
        f"{training.optimizer} lr {training.learning_rate:g}, {epochs} epochs, "
        f"{'full batch' if batch is None else f'batch {batch}'}. Run it with: python this_file.py",
        '"""',
        "",
        "import numpy as np",
        "import torch",
        "from torch import nn",
        "",
        f"SEED = {config.seed}",
        f"EPOCHS = {epochs}",
        "",
        *data_lines,
        "x_train_tensor = torch.tensor(inputs_train, dtype=torch.float32)",
        "x_test_tensor = torch.tensor(inputs_test, dtype=torch.float32)",
        *targets,
        "",
        "",
        "class NeuralNet(nn.Module):",
        '    """The tutorial\'s NeuralNet with any number of hidden layers: Linear -> activation for each,',
        '    then a last Linear giving the logits (the loss applies the sigmoid/softmax)."""',
        "",
        "    def __init__(self, sizes):",
        "        super().__init__()",
        "        self.sizes = sizes",
        "        for number, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:]), start=1):",
        '            setattr(self, f"linear_{number}", nn.Linear(fan_in, fan_out))',
        f"        self.activation = nn.{ACTIVATION_CLASSES[config.model.activation]}()",
        f"        self.dropout = nn.Dropout({dropout!r})" if dropout else "        self.dropout = nn.Identity()",
        "",
        "    def forward(self, x):",
        "        last = len(self.sizes) - 1",
        "        for number in range(1, last):",
        '            x = self.dropout(self.activation(getattr(self, f"linear_{number}")(x)))',
        '        return getattr(self, f"linear_{last}")(x)',
        "",
        "",
        "torch.manual_seed(SEED)  # before the layers are made: the seed gives the playground's initial weights",
        f"model = NeuralNet({sizes})",
        f"criterion = {LOSSES[task]}",
        f"optimizer = {_optimizer(build)}",
        "generator = torch.Generator().manual_seed(SEED)  # shuffles the mini-batches" if batch else "",
        "",
        "",
        "def loss_of(output, target):",
        "    return criterion(output.squeeze(-1), target)" if task != "multiclass" else
        "    return criterion(output, target)",
        "",
        "",
        "n = len(x_train_tensor)",
        "train_loss = float(\"nan\")  # until an epoch has run",
        "for epoch in range(1, EPOCHS + 1):",
        "    model.train()",
        *(["    order = torch.randperm(n, generator=generator)",
           f"    batches = zip(x_train_tensor[order].split({batch}), y_train[order].split({batch}))"]
          if batch and batch < len(dataset.x_train) else ["    batches = [(x_train_tensor, y_train)]  # full batch"]),
        "    loss_sum = 0.0",
        "    for x, y in batches:",
        "        optimizer.zero_grad()",
        "        output = model(x)",
        "        loss = loss_of(output, y)",
        *(["        penalty = sum(getattr(model, f'linear_{k}').weight.abs().sum()",
           "                      for k in range(1, len(model.sizes)))",
           f"        (loss + {training.l1!r} * penalty).backward()"] if training.l1 else ["        loss.backward()"]),
        "        optimizer.step()",
        "        loss_sum += loss.item() * len(y)",
        "    train_loss = loss_sum / n",
        "    if epoch % 100 == 0 or epoch == EPOCHS:",
        '        print(f"epoch {epoch}/{EPOCHS}  train loss {train_loss:.6f}")',
        "",
        "model.eval()",
        "with torch.no_grad():",
        "    test_loss = loss_of(model(x_test_tensor), y_test).item()",
        'print(f"Final: train loss {train_loss:.6f} | test loss {test_loss:.6f}")',
    ]
    return "\n".join(line for line in _drop_double_blank(lines)) + "\n"


def _drop_double_blank(lines: list[Any]) -> list[str]:
    kept: list[str] = []
    for line in lines:
        if line == "" and len(kept) >= 2 and kept[-1] == "" and kept[-2] == "":
            continue
        kept.append(line)
    return kept
