"""Figures of the network itself: the layered diagram of its weights and biases, and what each hidden
unit computes over the input plane (TensorFlow Playground's node pictures)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .boundary import input_names
from .config import MlplabError
from .plots import FIGURE_SIZE, NEGATIVE, POSITIVE, PROBABILITY_MAP, require_matplotlib

__all__ = ["plot_network", "plot_neurons"]

MAX_DRAWN_UNITS = 10  # a wider layer shows its first 9 units and one "+N units" node
MAX_HEATMAP_UNITS = 48  # hidden units drawn per layer by plot_neurons
HEATMAP_COLUMNS = 8


def _output_names(model: Any, n_outputs: int) -> list[str]:
    if model.task == "binary":
        return [f"P(label {model.classes[1]})" if model.classes else "P(label 1)"]
    if model.task == "multiclass" and model.classes and len(model.classes) == n_outputs:
        return [f"P(label {label})" for label in model.classes]
    target = model.meta.get("data", {}).get("target") if model.meta else None
    return [target or "prediction"] if n_outputs == 1 else [f"y{i + 1}" for i in range(n_outputs)]


def _short(text: str, limit: int = 18) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def plot_network(model: Any, title: str = "Network") -> Any:
    """The layered diagram: a node per unit (its bias written inside), an edge per weight, orange for
    positive and blue for negative, thicker for larger magnitude; inputs named after their columns
    (``colour=red`` for a one-hot column), outputs after the classes or the target. A layer wider than
    10 units shows its first 9 and a "+N units" node; the summarised units' edges are left out."""
    plt = require_matplotlib()
    layers = [(layer.weight.detach().cpu().double().numpy(), layer.bias.detach().cpu().double().numpy())
              for layer in model.module.linears]
    sizes = [layers[0][0].shape[1]] + [weight.shape[0] for weight, _ in layers]
    shown = [min(size, MAX_DRAWN_UNITS - 1) if size > MAX_DRAWN_UNITS else size for size in sizes]
    tallest = max(shown) + 1
    width, height = max(FIGURE_SIZE[0], 2.4 * len(sizes) + 1.2), max(FIGURE_SIZE[1], 0.62 * tallest + 1.6)
    figure, ax = plt.subplots(figsize=(width, height))
    totals = [count + (sizes[column] > count) for column, count in enumerate(shown)]  # with a "+N" node
    positions = [[(column, (total - 1) / 2 - row) for row in range(total)] for column, total in enumerate(totals)]
    largest = max(float(np.abs(weight).max()) for weight, _ in layers) or 1.0
    for column, (weight, _) in enumerate(layers):
        for target in range(shown[column + 1]):
            for source in range(shown[column]):
                value = weight[target, source]
                (x0, y0), (x1, y1) = positions[column][source], positions[column + 1][target]
                ax.plot([x0, x1], [y0, y1], color=POSITIVE if value >= 0 else NEGATIVE,
                        linewidth=0.3 + 3.2 * abs(value) / largest, alpha=0.8, zorder=1, gid="edge")
    names = input_names(model.preprocessor)
    if len(names) != sizes[0]:
        names = [f"x{i + 1}" for i in range(sizes[0])]
    outputs = _output_names(model, sizes[-1])
    last = len(sizes) - 1
    for column, count in enumerate(shown):
        for row, (x, y) in enumerate(positions[column]):
            if row == count:  # the summary of the units not drawn
                ax.text(x, y, f"+{sizes[column] - count} units", ha="center", va="center", fontsize=8, zorder=3,
                        bbox={"boxstyle": "round,pad=0.4", "facecolor": "#eeeeee", "edgecolor": "#333333"})
                continue
            ax.scatter([x], [y], s=700, color="white", edgecolors="#333333", zorder=2)
            if column == 0:
                ax.text(x - 0.16, y, _short(names[row]), ha="right", va="center", fontsize=8, zorder=3)
            else:
                ax.text(x, y, f"{layers[column - 1][1][row]:+.2f}", ha="center", va="center", fontsize=7, zorder=3)
            if column == last:
                ax.text(x + 0.16, y, _short(outputs[row]), ha="left", va="center", fontsize=8, zorder=3)
    labels = ["input"] + [f"hidden {i} ({model.module.activation_name})" for i in range(1, len(sizes) - 1)]
    labels.append(f"output ({model.meta.get('architecture', {}).get('output', model.task)})")
    lowest = -(max(len(p) for p in positions) - 1) / 2 - 0.55
    for column, label in enumerate(labels):
        units = f"{sizes[column]} unit" + ("s" if sizes[column] != 1 else "")
        ax.text(column, lowest, f"{label}\n{units}", ha="center", va="top", fontsize=8)
    ax.plot([], [], color=POSITIVE, label="positive weight")
    ax.plot([], [], color=NEGATIVE, label="negative weight")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize="small", frameon=False)
    ax.set_ylim(lowest - 0.8, -lowest + 0.1)
    ax.set_title(f"{title} (numbers in nodes: biases)", pad=22)
    ax.axis("off")
    ax.set_xlim(-1.0, len(sizes) - 0.2)
    figure.tight_layout()
    return figure


def _hidden_outputs(model: Any, plane: np.ndarray) -> list[np.ndarray]:
    import torch

    parameter = next(model.module.parameters())
    a = torch.as_tensor(plane, dtype=parameter.dtype)
    outputs = []
    with torch.inference_mode():
        for layer in model.module.linears[:-1]:
            a = model.module.activation(layer(a))
            outputs.append(a.numpy())
    return outputs


def plot_neurons(model: Any, x_train: np.ndarray, resolution: int = 60) -> Any:
    """For 2-D inputs: every hidden unit's activation over the input plane, a small heatmap each, laid
    out as a grid (a block of rows per layer, at most 8 units a row), all on one colour scale with one
    colour bar, so units and layers compare at a glance."""
    if model.module.sizes[0] != 2:
        raise MlplabError(f"plot neurons needs a network with 2 inputs; this one has {model.module.sizes[0]}")
    if len(model.module.sizes) < 3:
        raise MlplabError("plot neurons draws hidden units; this network has no hidden layer")
    plt = require_matplotlib()
    from matplotlib.colors import Normalize, PowerNorm

    pad = 0.1 * (x_train.max(axis=0) - x_train.min(axis=0) + 1e-9)
    u = np.linspace(x_train[:, 0].min() - pad[0], x_train[:, 0].max() + pad[0], resolution)
    v = np.linspace(x_train[:, 1].min() - pad[1], x_train[:, 1].max() + pad[1], resolution)
    grid_u, grid_v = np.meshgrid(u, v)
    hidden = _hidden_outputs(model, np.stack([grid_u.ravel(), grid_v.ravel()], axis=1))
    drawn = [min(layer.shape[1], MAX_HEATMAP_UNITS) for layer in hidden]
    columns = min(HEATMAP_COLUMNS, max(drawn))
    rows_per_layer = [-(-count // columns) for count in drawn]
    low, high = min(float(layer.min()) for layer in hidden), max(float(layer.max()) for layer in hidden)
    # One scale for every unit, so units compare. Non-negative activations (relu, sigmoid, softplus) pile
    # up near 0 while a few deep units reach far; a square-root scale keeps the small ones readable.
    norm = PowerNorm(0.5, low, high) if low >= 0 else Normalize(low, high)
    figure = plt.figure(figsize=(1.35 * columns + 1.6, 1.35 * sum(rows_per_layer) + 0.9), layout="constrained")
    grid = figure.add_gridspec(sum(rows_per_layer), columns)
    image = None
    first_row = 0
    for index, (outputs, count) in enumerate(zip(hidden, drawn)):
        for unit in range(count):
            row, column = divmod(unit, columns)
            ax = figure.add_subplot(grid[first_row + row, column])
            image = ax.imshow(outputs[:, unit].reshape(grid_u.shape), origin="lower", cmap=PROBABILITY_MAP,
                              norm=norm, extent=(u[0], u[-1], v[0], v[-1]), aspect="auto")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"unit {unit + 1}", fontsize=7, pad=2)
            if column == 0 and row == 0:
                more = f"\n(first {count} of {outputs.shape[1]})" if count < outputs.shape[1] else ""
                ax.set_ylabel(f"layer {index + 1}{more}", fontsize=9, fontweight="bold")
        first_row += rows_per_layer[index]
    figure.colorbar(image, ax=figure.axes, label=f"activation ({model.module.activation_name})", shrink=0.9)
    names = input_names(model.preprocessor)
    axes_note = f"x: {names[0]}, y: {names[1]}" if len(names) == 2 else ""
    figure.suptitle(f"Hidden units over the input plane ({axes_note})", fontsize=10)
    return figure
