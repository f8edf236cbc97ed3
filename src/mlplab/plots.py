"""Figures of data, runs and networks, drawn headless (matplotlib's Agg backend) into files.

Every function returns the matplotlib Figure (so tests and notebooks can inspect it); :func:`save`
writes it as PNG, SVG or PDF. Colours are chosen for colour-blind readers: the Okabe-Ito palette for
classes, ``cividis`` for probabilities and values, orange/blue for the sign of a weight.
matplotlib is optional (``pip install 'mlplab[plots]'``) and imported only here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .config import MlplabError

__all__ = ["CLASS_COLOURS", "plot_activations", "plot_boundary", "plot_data", "plot_history", "plot_network",
           "plot_neurons", "save"]

# Okabe & Ito (2008), distinguishable with the common colour-vision deficiencies.
CLASS_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
POSITIVE, NEGATIVE = "#E69F00", "#0072B2"  # weight signs: orange and blue
PROBABILITY_MAP = "cividis"
FIGURE_SIZE = (6.4, 4.8)
DPI = 100


def require_pyplot():
    try:
        import matplotlib
    except ImportError:
        raise MlplabError("plotting needs matplotlib: pip install 'mlplab[plots]'") from None
    matplotlib.use("Agg")  # files only: works without a display
    import matplotlib.pyplot as plt

    return plt


def save(figure: Any, path: str | Path) -> Path:
    """Write ``figure`` (format from the suffix: .png, .svg or .pdf) and close it."""
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise MlplabError(f"{path}: figures are written as .png, .svg or .pdf")
    if not path.parent.is_dir():
        raise MlplabError(f"{path}: the folder {path.parent} does not exist")
    figure.savefig(path, dpi=DPI)
    require_pyplot().close(figure)
    return path


def _class_colour(index: int) -> str:
    return CLASS_COLOURS[index % len(CLASS_COLOURS)]


def _scatter(ax: Any, x: np.ndarray, y: np.ndarray, task: str, classes: list | None, marker: str = "o",
             label_suffix: str = "", edge: str = "white") -> None:
    if task == "regression":
        points = ax.scatter(x[:, 0], x[:, 1], c=y, cmap=PROBABILITY_MAP, marker=marker, edgecolors=edge, s=36)
        ax.figure.colorbar(points, ax=ax, label="target")
        return
    for index, label in enumerate(classes or sorted(set(y.tolist()))):
        rows = y == index
        ax.scatter(x[rows, 0], x[rows, 1], color=_class_colour(index), marker=marker, edgecolors=edge, s=36,
                   label=f"{label}{label_suffix}")


def plot_data(x: np.ndarray, y: np.ndarray, task: str, classes: list | None = None,
              feature_names: list[str] | None = None, title: str = "Data") -> Any:
    """The tutorial's scatter: points coloured by label (by value for regression); the first two
    features, or a PCA view of more."""
    plt = require_pyplot()
    figure, ax = plt.subplots(figsize=FIGURE_SIZE)
    view, names = two_dimensional(x, feature_names)
    _scatter(ax, view, y, task, classes)
    ax.set(title=title, xlabel=names[0], ylabel=names[1])
    if task != "regression":
        ax.legend(title="label")
    figure.tight_layout()
    return figure


def two_dimensional(x: np.ndarray, names: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Two columns to draw: the data itself when 2-D, else its first two principal components."""
    names = names or [f"x{i + 1}" for i in range(x.shape[1])]
    if x.shape[1] == 2:
        return x, names
    centred = x - x.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    return centred @ components[:2].T, ["PC 1", "PC 2"]


def plot_boundary(model: Any, splits: dict[str, tuple[np.ndarray, np.ndarray]], features: tuple[int, int] = (0, 1),
                  pca: bool = False, resolution: int = 200, title: str = "Decision boundary") -> Any:
    """Decision regions as a heatmap of P(class 1) (binary), of the winning class (multiclass) or of the
    prediction (regression); train points as circles, test points as crosses. ``splits`` maps split
    names to encoded (x, y). With more than two inputs, the plane spans two of them (``features``,
    indices of encoded columns) with the others held at their training mean, or with ``pca`` the
    training data's first two principal components."""
    plt = require_pyplot()
    train = splits["train"][0]
    mean = train.mean(axis=0)
    if pca and train.shape[1] > 2:
        components = np.linalg.svd(train - mean, full_matrices=False)[2][:2]

        def project(x: np.ndarray) -> np.ndarray:  # rows -> plane coordinates
            return (x - mean) @ components.T

        def lift(plane: np.ndarray) -> np.ndarray:  # plane coordinates -> network inputs
            return mean + plane @ components

        axis_names = ["PC 1", "PC 2"]
    else:
        first, second = features

        def project(x: np.ndarray) -> np.ndarray:
            return x[:, [first, second]]

        def lift(plane: np.ndarray) -> np.ndarray:
            rows = np.tile(mean, (len(plane), 1))
            rows[:, first], rows[:, second] = plane[:, 0], plane[:, 1]
            return rows

        names = model.preprocessor.column_names if model.preprocessor.all_numeric else None
        axis_names = [names[i] if names else f"input {i + 1}" for i in (first, second)]
    points = {name: (project(x), y) for name, (x, y) in splits.items()}
    view = np.concatenate([x for x, _ in points.values()])
    pad = 0.1 * (view.max(axis=0) - view.min(axis=0) + 1e-9)
    u = np.linspace(view[:, 0].min() - pad[0], view[:, 0].max() + pad[0], resolution)
    v = np.linspace(view[:, 1].min() - pad[1], view[:, 1].max() + pad[1], resolution)
    grid_u, grid_v = np.meshgrid(u, v)
    outputs = network_outputs(model, lift(np.stack([grid_u.ravel(), grid_v.ravel()], axis=1)))
    figure, ax = plt.subplots(figsize=FIGURE_SIZE)
    extent = (u[0], u[-1], v[0], v[-1])
    if model.task == "multiclass":
        from matplotlib.colors import ListedColormap

        colours = ListedColormap([_class_colour(i) for i in range(outputs.shape[1])])
        winner = outputs.argmax(axis=1).reshape(grid_u.shape)
        ax.imshow(winner, origin="lower", extent=extent, aspect="auto", cmap=colours, alpha=0.35,
                  vmin=-0.5, vmax=outputs.shape[1] - 0.5, interpolation="nearest")
    else:
        binary = model.task == "binary"
        image = ax.imshow(outputs.reshape(grid_u.shape), origin="lower", extent=extent, aspect="auto",
                          cmap=PROBABILITY_MAP, vmin=0 if binary else None, vmax=1 if binary else None,
                          interpolation="nearest")
        figure.colorbar(image, ax=ax, label=f"P(label {model.classes[1]})" if binary else "prediction")
        if binary:
            ax.contour(grid_u, grid_v, outputs.reshape(grid_u.shape), levels=[0.5], colors="white",
                       linewidths=1.5)
    for name, (x, y) in points.items():
        marker, suffix = ("o", " (train)") if name == "train" else ("X", f" ({name})")
        _scatter(ax, x, y, model.task, model.classes, marker, suffix, edge="black")
    ax.set(title=title, xlabel=axis_names[0], ylabel=axis_names[1], xlim=extent[:2], ylim=extent[2:])
    if model.task != "regression":
        ax.legend(fontsize="small", loc="best")
    figure.tight_layout()
    return figure


def network_outputs(model: Any, encoded: np.ndarray) -> np.ndarray:
    """P(class 1) (binary), class probabilities (multiclass) or predictions, for already encoded rows."""
    import torch

    from .metrics import probabilities_from_logits

    parameter = next(model.module.parameters())
    with torch.inference_mode():
        logits = model.module.eval()(torch.as_tensor(encoded, dtype=parameter.dtype)).numpy()
    return probabilities_from_logits(logits, model.task)


def plot_history(history: list[dict[str, Any]], best_epoch: int | None = None, title: str = "Training") -> Any:
    """Loss (left) and the headline metric (right) per epoch, train against validation (or test), with
    the epoch early stopping kept marked."""
    plt = require_pyplot()
    epochs = [record["epoch"] for record in history]
    evaluated = "val" if any("val_loss" in record for record in history) else "test"
    metric = "accuracy" if any("train_accuracy" in record for record in history) else "r2"
    figure, (loss_ax, metric_ax) = plt.subplots(1, 2, figsize=(FIGURE_SIZE[0] * 1.6, FIGURE_SIZE[1]))
    for ax, key, label in ((loss_ax, "loss", "loss"), (metric_ax, metric, metric.replace("r2", "R²"))):
        for split, colour in (("train", CLASS_COLOURS[0]), (evaluated, CLASS_COLOURS[1])):
            values = [record.get(f"{split}_{key}") for record in history]
            if any(value is not None for value in values):
                ax.plot(epochs, [np.nan if value is None else value for value in values], color=colour,
                        label=split)
        if best_epoch:
            ax.axvline(best_epoch, color="#555555", linestyle="--", label=f"best epoch ({best_epoch})")
        ax.set(xlabel="epoch", ylabel=label, title=f"{title}: {label}")
        ax.legend()
    figure.tight_layout()
    return figure


def plot_activations(names: list[str] | None = None) -> Any:
    """Every registered activation (solid) and its derivative (dashed): the tutorial's figure."""
    from .backprop import ACTIVATION_FUNCTIONS

    plt = require_pyplot()
    names = names or list(ACTIVATION_FUNCTIONS)
    columns = 5
    rows = -(-len(names) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.4 * rows), squeeze=False)
    z = np.linspace(-4, 4, 401)
    for ax, name in zip(axes.ravel(), names):
        activation = ACTIVATION_FUNCTIONS[name]
        a = activation.function(z)
        ax.plot(z, a, color=CLASS_COLOURS[0], label="f(z)")
        ax.plot(z, np.asarray(activation.derivative(z, a), dtype=float), color=CLASS_COLOURS[1], linestyle="--",
                label="f'(z)")
        ax.axhline(0, color="#999999", linewidth=0.5)
        ax.axvline(0, color="#999999", linewidth=0.5)
        ax.set_title(name)
        ax.set_xlabel("z")
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize="small")
    figure.suptitle("Activation functions and their derivatives")
    figure.tight_layout()
    return figure


MAX_DRAWN_UNITS = 10


def plot_network(model: Any, title: str = "Network") -> Any:
    """The layered diagram: a node per unit (bias written inside), an edge per weight, orange for
    positive and blue for negative, thicker for larger magnitude. Layers wider than 10 units show their
    first 9 and a "+N more" node; edges to hidden units are then left out."""
    plt = require_pyplot()
    layers = [(layer.weight.detach().cpu().double().numpy(), layer.bias.detach().cpu().double().numpy())
              for layer in model.module.linears]
    sizes = [layers[0][0].shape[1]] + [weight.shape[0] for weight, _ in layers]
    shown = [min(size, MAX_DRAWN_UNITS - 1) if size > MAX_DRAWN_UNITS else size for size in sizes]
    tallest = max(shown) + 1
    width, height = max(FIGURE_SIZE[0], 2.2 * len(sizes)), max(FIGURE_SIZE[1], 0.62 * tallest + 1.6)
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
    names = model.preprocessor.column_names if model.preprocessor.all_numeric else None
    for column, count in enumerate(shown):
        for row, (x, y) in enumerate(positions[column]):
            more = row == count
            ax.scatter([x], [y], s=700, color="white", edgecolors="#333333", zorder=2)
            if more:
                text = f"+{sizes[column] - count}"
            elif column == 0:
                text = names[row] if names and len(names[row]) <= 6 else f"x{row + 1}"
            else:
                text = f"{layers[column - 1][1][row]:+.2f}"  # the unit's bias
            ax.text(x, y, text, ha="center", va="center", fontsize=7, zorder=3)
    labels = ["input"] + [f"hidden {i} ({model.module.activation_name})" for i in range(1, len(sizes) - 1)]
    labels.append(f"output ({model.meta.get('architecture', {}).get('output', model.task)})")
    lowest = -(max(len(p) for p in positions) - 1) / 2 - 0.55
    for column, label in enumerate(labels):
        ax.text(column, lowest, f"{label}\n{sizes[column]} units", ha="center", va="top", fontsize=8)
    ax.plot([], [], color=POSITIVE, label="positive weight")
    ax.plot([], [], color=NEGATIVE, label="negative weight")
    ax.legend(loc="upper right", fontsize="small")
    ax.set_ylim(lowest - 0.8, -lowest + 0.3)
    ax.set_title(f"{title} (numbers in nodes: biases)")
    ax.axis("off")
    ax.set_xlim(-0.5, len(sizes) - 0.5)
    figure.tight_layout()
    return figure


def plot_neurons(model: Any, x_train: np.ndarray, resolution: int = 60) -> Any:
    """For 2-D inputs: every hidden unit's activation over the input plane, a small heatmap each, as
    TensorFlow Playground draws inside its nodes."""
    import torch

    if model.module.sizes[0] != 2:
        raise MlplabError(f"plot neurons needs a network with 2 inputs; this one has {model.module.sizes[0]}")
    plt = require_pyplot()
    pad = 0.1 * (x_train.max(axis=0) - x_train.min(axis=0) + 1e-9)
    u = np.linspace(x_train[:, 0].min() - pad[0], x_train[:, 0].max() + pad[0], resolution)
    v = np.linspace(x_train[:, 1].min() - pad[1], x_train[:, 1].max() + pad[1], resolution)
    grid_u, grid_v = np.meshgrid(u, v)
    parameter = next(model.module.parameters())
    a = torch.as_tensor(np.stack([grid_u.ravel(), grid_v.ravel()], axis=1), dtype=parameter.dtype)
    hidden_outputs = []
    with torch.inference_mode():
        for layer in model.module.linears[:-1]:
            a = model.module.activation(layer(a))
            hidden_outputs.append(a.numpy())
    columns = max(output.shape[1] for output in hidden_outputs)
    figure, axes = plt.subplots(len(hidden_outputs), columns, squeeze=False,
                                figsize=(1.6 * columns + 1, 1.6 * len(hidden_outputs) + 0.8))
    for row, outputs in enumerate(hidden_outputs):
        for unit in range(columns):
            ax = axes[row, unit]
            ax.set_xticks([])
            ax.set_yticks([])
            if unit >= outputs.shape[1]:
                ax.axis("off")
                continue
            ax.imshow(outputs[:, unit].reshape(grid_u.shape), origin="lower", cmap=PROBABILITY_MAP,
                      extent=(u[0], u[-1], v[0], v[-1]), aspect="auto")
            ax.set_title(f"layer {row + 1}, unit {unit + 1}", fontsize=7)
    figure.suptitle(f"Hidden units' activations ({model.module.activation_name}) over the input plane")
    figure.tight_layout()
    return figure
