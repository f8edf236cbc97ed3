"""Figures of data, runs and networks, drawn headless (plain matplotlib Figures, Agg) into files.

Every function returns the matplotlib Figure (so tests and notebooks can inspect it); :func:`save`
writes it as PNG, SVG or PDF. Colours are chosen for colour-blind readers: the Okabe-Ito palette for
classes, pale blue-white-orange for P(class 1) (the two classes' colours), ``cividis`` for values,
orange/blue for the sign of a weight.
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


class _Figures:
    """The three pyplot calls mlplab makes, on plain ``matplotlib.figure.Figure`` objects. pyplot's
    figure manager is never touched, so the backend a notebook user chose stays as it was (the old
    ``matplotlib.use("Agg")`` switched it under them), no display is needed, and ``import
    matplotlib.pyplot`` (~0.3 s) is skipped. A Figure saves itself with the Agg renderer."""

    @staticmethod
    def subplots(nrows: int = 1, ncols: int = 1, *, figsize: Any = None, layout: Any = None, **options: Any):
        figure = _Figures.figure(figsize, layout)
        return figure, figure.subplots(nrows, ncols, **options)

    @staticmethod
    def figure(figsize: Any = None, layout: Any = None, **options: Any) -> Any:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=figsize, layout=layout, **options)
        FigureCanvasAgg(figure)  # its own Agg canvas: figure.canvas draws and gives pixels, as pyplot's would
        return figure

    @staticmethod
    def close(figure: Any) -> None:
        """Nothing to release: the figure was never registered with pyplot."""


def require_matplotlib() -> _Figures:
    """Figure makers that need no display and leave pyplot's state alone; a clear error without
    matplotlib."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MlplabError("plotting needs matplotlib: pip install 'mlplab[plots]'") from None
    return _Figures()


def save(figure: Any, path: str | Path) -> Path:
    """Write ``figure`` (format from the suffix: .png, .svg or .pdf) and close it."""
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise MlplabError(f"{path}: figures are written as .png, .svg or .pdf")
    if not path.parent.is_dir():
        raise MlplabError(f"{path}: the folder {path.parent} does not exist")
    figure.savefig(path, dpi=DPI)
    require_matplotlib().close(figure)
    return path


def class_colour(index: int) -> str:
    return CLASS_COLOURS[index % len(CLASS_COLOURS)]


def probability_map() -> Any:
    """P(class 1) from the first class's blue through white to the second class's orange, paler than
    the points' colours so the points stand out on their own region."""
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("mlplab_probability", ["#7db8e0", "#ffffff", "#f4ca70"])


def _scatter(ax: Any, x: np.ndarray, y: np.ndarray, task: str, classes: list | None) -> None:
    if task == "regression":
        points = ax.scatter(x[:, 0], x[:, 1], c=y, cmap=PROBABILITY_MAP, edgecolors="#1a1a1a", linewidths=0.5,
                            s=36)
        ax.figure.colorbar(points, ax=ax, label="target")
        return
    for index, label in enumerate(classes or sorted(set(y.tolist()))):
        rows = y == index
        ax.scatter(x[rows, 0], x[rows, 1], color=class_colour(index), edgecolors="#1a1a1a", linewidths=0.5, s=36,
                   label=str(label))


def plot_data(x: np.ndarray, y: np.ndarray, task: str, classes: list | None = None,
              feature_names: list[str] | None = None, title: str = "Data") -> Any:
    """The tutorial's scatter: points coloured by label (by value for regression); the first two
    features, or a PCA view of more."""
    plt = require_matplotlib()
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


def plot_boundary(model: Any, splits: dict[str, tuple[np.ndarray, np.ndarray]],
                  features: tuple[str, str] | None = None, pca: bool = False, resolution: int = 200,
                  title: str | None = None) -> Any:
    """Decision regions (classification: P(class 1) for binary, the winning class for multiclass, with
    the boundary drawn as a line) or the prediction surface (regression), with the train and test points
    on it. ``splits`` maps split names to encoded (x, y). With more than two inputs, the plane spans two
    numeric inputs named by ``features`` (the others held at their training median or most frequent
    category) or, with ``pca`` (the default then), the training data's first two principal components.
    Axes of named inputs are in the data's original units."""
    from .boundary import BoundaryView

    plt = require_matplotlib()
    view = BoundaryView(model, splits, features, pca, resolution)
    outputs = view.outputs()
    figure, ax = plt.subplots(figsize=FIGURE_SIZE)
    norm = None
    if model.task == "regression":
        from matplotlib.colors import Normalize

        norm = Normalize(*view.value_range(outputs))
    image = view.draw(ax, outputs, norm)
    if model.task == "binary":
        figure.colorbar(image, ax=ax, label=f"P(label {model.classes[1]})", pad=0.02)
    elif model.task == "regression":
        target = model.meta.get("data", {}).get("target") or "target"
        figure.colorbar(image, ax=ax, label=f"predicted {target} (points: true value)", pad=0.02)
    default = "Prediction surface" if model.task == "regression" else "Decision boundary"
    if view.held:  # the title on the left, what the other inputs are held at on the right
        ax.set_title(title or default, loc="left")
        shown = ", ".join(view.held[:3]) + (", ..." if len(view.held) > 3 else "")
        ax.set_title(f"others at {shown}", loc="right", fontsize="x-small", color="#444444")
    else:
        ax.set_title(title or default)
    figure.tight_layout()
    return figure


def plot_history(history: list[dict[str, Any]], best_epoch: int | None = None, title: str = "Training") -> Any:
    """Loss (left) and the headline metric (right) per epoch, train against validation (or test), with
    the epoch early stopping kept marked. A loss spanning more than two decades (a regression's MSE
    falling from its first epochs) is drawn on a log scale; an R² far below 0 early on is cut at -1, so
    the epochs that matter are not squashed into a line."""
    plt = require_matplotlib()
    evaluated = "val" if any("val_loss" in record for record in history) else "test"
    metric = "accuracy" if any("train_accuracy" in record for record in history) else "r2"
    figure, (loss_ax, metric_ax) = plt.subplots(1, 2, figsize=(FIGURE_SIZE[0] * 1.6, FIGURE_SIZE[1]))
    for ax, key, label in ((loss_ax, "loss", "loss"), (metric_ax, metric, metric.replace("r2", "R²"))):
        drawn = []
        for split, colour in (("train", CLASS_COLOURS[0]), (evaluated, CLASS_COLOURS[1])):
            # the held-out split may be scored only at log points: draw the epochs that have it
            points = [(record["epoch"], record[f"{split}_{key}"]) for record in history
                      if record.get(f"{split}_{key}") is not None]
            if points:
                ax.plot(*zip(*points), color=colour, label=split, marker="." if len(points) < 60 else None)
                drawn += [value for _, value in points if np.isfinite(value)]
        if best_epoch:
            ax.axvline(best_epoch, color="#555555", linestyle="--", label=f"best epoch ({best_epoch})")
        if key == "loss" and drawn and min(drawn) > 0 and max(drawn) / min(drawn) > 100:
            ax.set_yscale("log")
            label += " (log scale)"
        if key == "r2" and drawn and min(drawn) < -1 < max(drawn):
            ax.set_ylim(-1, max(1.0, max(drawn)) + 0.05)
            label += " (cut at -1)"
        ax.set(xlabel="epoch", ylabel=label, title=f"{title}: {label}")
        ax.legend()
    figure.tight_layout()
    return figure


def plot_activations(names: list[str] | None = None) -> Any:
    """Every registered activation (solid) and its derivative (dashed): the tutorial's figure."""
    from .backprop import ACTIVATION_FUNCTIONS

    plt = require_matplotlib()
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


# The network's own figures (diagram, hidden units) live in their own module; re-exported here so that
# every figure is one import away. At the end: network_plots uses this module's helpers.
from .network_plots import plot_network, plot_neurons  # noqa: E402
