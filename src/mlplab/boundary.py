"""The decision boundary (or, for regression, the prediction surface) over a plane through the input
space: one drawing shared by ``mlplab plot boundary`` and every frame of ``mlplab plot animate``.

The plane spans two inputs (the others held at their training median, or a categorical input at its
most frequent category), or the training data's first two principal components. Axes of a numeric
input are in the input's original units: the network sees scaled values, the reader thinks in the data's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .config import MlplabError

__all__ = ["BoundaryView", "encoded_columns", "input_names"]

# Pale versions of the classes' Okabe-Ito colours for the regions, so saturated points stand out on them.
REGION_ALPHA = 0.35
TRAIN_MARKER = {"marker": "o", "s": 30, "linewidths": 0.7, "edgecolors": "#1a1a1a"}
TEST_MARKER = {"marker": "D", "s": 46, "linewidths": 1.6, "edgecolors": "#000000"}


def encoded_columns(preprocessor: Any) -> list[tuple[str, str | None]]:
    """(feature name, category or None) for every column the network sees, in order: a numeric feature
    is one column, a categorical one a column per category (its one-hot block)."""
    columns: list[tuple[str, str | None]] = []
    for feature in preprocessor.features:
        if feature["kind"] == "categorical":
            columns += [(feature["name"], str(category)) for category in feature["categories"]]
        else:
            columns.append((feature["name"], None))
    return columns


def input_names(preprocessor: Any) -> list[str]:
    """A readable name per network input: the column's name, ``colour=red`` for a one-hot column."""
    return [name if category is None else f"{name}={category}" for name, category in encoded_columns(preprocessor)]


def _unscaling(preprocessor: Any, n_inputs: int) -> tuple[np.ndarray, np.ndarray]:
    """(offset, divisor) per network input, so that original = encoded * divisor + offset."""
    offset = np.asarray(getattr(preprocessor, "offset", None) or [0.0] * n_inputs, dtype=float)
    divisor = np.asarray(getattr(preprocessor, "divisor", None) or [1.0] * n_inputs, dtype=float)
    return offset, divisor


class BoundaryView:
    """A plane through the input space, the grid over it and the points on it, drawn the same way by the
    still figure and the animation.

    Parameters
    ----------
    model : TrainedModel
        The model whose preprocessing defines the inputs (the grid's outputs come from :meth:`outputs`).
    splits : dict
        Split name -> (encoded x, encoded y); ``"train"`` is required.
    features : tuple of two str, optional
        Input (column) names spanning the plane; numeric inputs only.
    pca : bool
        Span the plane by the training rows' first two principal components instead.
    resolution : int
        Grid points per axis.
    """

    def __init__(self, model: Any, splits: dict[str, tuple[np.ndarray, np.ndarray]],
                 features: tuple[str, str] | None = None, pca: bool = False, resolution: int = 200):
        self.model, self.task, self.classes = model, model.task, model.classes
        train = np.asarray(splits["train"][0], dtype=float)
        n_inputs = train.shape[1]
        self.held: list[str] = []  # "name = value" for the inputs held fixed, shown under the title
        raw_names = getattr(model.preprocessor, "raw_names", None)  # set when inputs are computed (x1^2)
        n_columns = len(raw_names) if getattr(model.preprocessor, "input_features", None) else n_inputs
        if pca or (features is None and n_columns > 2):
            self._pca_plane(train)
        else:
            self._input_plane(train, features)
        self.points = {name: (self.to_plane(np.asarray(x, dtype=float)), np.asarray(y)) for name, (x, y) in
                       splits.items() if x is not None and len(x)}
        view = np.concatenate([x for x, _ in self.points.values()])
        pad = 0.1 * (view.max(axis=0) - view.min(axis=0) + 1e-9)
        u = np.linspace(view[:, 0].min() - pad[0], view[:, 0].max() + pad[0], resolution)
        v = np.linspace(view[:, 1].min() - pad[1], view[:, 1].max() + pad[1], resolution)
        self.grid_u, self.grid_v = np.meshgrid(u, v)
        self.extent = (u[0], u[-1], v[0], v[-1])
        self.inputs = self.to_inputs(np.stack([self.grid_u.ravel(), self.grid_v.ravel()], axis=1))

    def _pca_plane(self, train: np.ndarray) -> None:
        mean = train.mean(axis=0)
        components = np.linalg.svd(train - mean, full_matrices=False)[2][:2]
        self.to_plane = lambda x: (x - mean) @ components.T
        self.to_inputs = lambda plane: mean + plane @ components
        self.axis_names = ("PC 1", "PC 2")

    def _input_plane(self, train: np.ndarray, features: tuple[str, str] | None) -> None:
        preprocessor = self.model.preprocessor
        if getattr(preprocessor, "input_features", None):
            self._raw_plane(train, features)
            return
        n_inputs = train.shape[1]
        columns = encoded_columns(preprocessor)
        if len(columns) != n_inputs:  # a bare state_dict: no description of the inputs
            columns = [(f"x{i + 1}", None) for i in range(n_inputs)]
        numeric = [name for name, category in columns if category is None]
        if features is None:
            chosen = (0, 1)
        else:
            unknown = [name for name in features if name not in numeric]
            if unknown:
                raise MlplabError(f"--features: no numeric input named {', '.join(unknown)}; numeric inputs are "
                                  f"{', '.join(numeric)}")
            if features[0] == features[1]:
                raise MlplabError(f"--features needs two different inputs; got {features[0]} twice")
            names = [name for name, _ in columns]
            chosen = (names.index(features[0]), names.index(features[1]))
        offset, divisor = _unscaling(preprocessor, n_inputs)
        base = self._held_row(train, columns, chosen, offset, divisor)
        first, second = chosen

        def to_plane(x: np.ndarray) -> np.ndarray:
            return x[:, [first, second]] * divisor[[first, second]] + offset[[first, second]]

        def to_inputs(plane: np.ndarray) -> np.ndarray:
            rows = np.tile(base, (len(plane), 1))
            rows[:, [first, second]] = (plane - offset[[first, second]]) / divisor[[first, second]]
            return rows

        self.to_plane, self.to_inputs = to_plane, to_inputs
        self.axis_names = (columns[first][0], columns[second][0])

    def _raw_plane(self, train: np.ndarray, features: tuple[str, str] | None) -> None:
        """The plane over two raw columns when the network's inputs are computed from them (``x1^2``,
        ``sin(x1)``, ...): each grid point goes through the preprocessing, so the derived inputs follow."""
        preprocessor = self.model.preprocessor
        columns = [name for name, _ in encoded_columns(preprocessor)]
        offset, divisor = _unscaling(preprocessor, train.shape[1])
        # A raw column is recoverable from the encoded rows where it is itself one of the inputs.
        direct = {name: columns.index(name) for name in preprocessor.raw_names if name in columns}
        chosen = tuple(features) if features else tuple(list(direct)[:2])
        unknown = [name for name in chosen if name not in direct]
        if len(chosen) != 2 or unknown:
            raise MlplabError(f"--features: the plane needs two columns that are inputs themselves; choose two of "
                              f"{', '.join(direct) or '(none)'}")
        if chosen[0] == chosen[1]:
            raise MlplabError(f"--features needs two different inputs; got {chosen[0]} twice")
        index = [direct[name] for name in chosen]
        held = {name: float(np.median(train[:, i]) * divisor[i] + offset[i]) for name, i in direct.items()}
        for name in preprocessor.raw_names:
            if name not in chosen:
                held.setdefault(name, 0.0)
                self.held.append(f"{name} = {held[name]:.4g}")

        def to_plane(x: np.ndarray) -> np.ndarray:
            return x[:, index] * divisor[index] + offset[index]

        def to_inputs(plane: np.ndarray) -> np.ndarray:
            table = {name: np.full(len(plane), held[name]) for name in preprocessor.raw_names}
            table[chosen[0]], table[chosen[1]] = plane[:, 0], plane[:, 1]
            return preprocessor.transform(table, np.float64)

        self.to_plane, self.to_inputs = to_plane, to_inputs
        self.axis_names = (chosen[0], chosen[1])

    def _held_row(self, train: np.ndarray, columns: list[tuple[str, str | None]], chosen: tuple[int, int],
                  offset: np.ndarray, divisor: np.ndarray) -> np.ndarray:
        """The network input for the inputs not on the plane: the training median of a numeric input,
        the most frequent category of a categorical one."""
        base = np.median(train, axis=0)
        start = 0
        while start < len(columns):
            name, category = columns[start]
            if category is None:
                if start not in chosen:
                    self.held.append(f"{name} = {base[start] * divisor[start] + offset[start]:.4g}")
                start += 1
                continue
            end = start
            while end < len(columns) and columns[end][0] == name:
                end += 1
            block = train[:, start:end]
            mode = int(np.bincount(block.argmax(axis=1), minlength=end - start).argmax())
            base[start:end] = block.min(axis=0)  # the encoded "off" value of each one-hot column
            base[start + mode] = block.max(axis=0)[mode]
            self.held.append(f"{name} = {columns[start + mode][1]}")
            start = end
        return base

    # --- drawing --------------------------------------------------------------------------------------

    def outputs(self, model: Any | None = None) -> np.ndarray:
        """P(class 1) (binary), class probabilities (multiclass) or predictions over the grid."""
        return (model or self.model).outputs(self.inputs, encoded=True).probabilities

    def value_range(self, outputs: np.ndarray) -> tuple[float, float]:
        """The colour scale of a regression surface: the predictions and the points' true values."""
        values = [outputs.ravel(), *(y.astype(float).ravel() for _, y in self.points.values())]
        joined = np.concatenate(values)
        return float(joined.min()), float(joined.max())

    def draw(self, ax: Any, outputs: np.ndarray, norm: Any = None) -> Any:
        """Regions (or the surface), the boundary line(s), the points and the legend onto ``ax``; returns
        the image so the caller can add the one colour bar."""
        from .plots import PROBABILITY_MAP, class_colour, probability_map

        shape = self.grid_u.shape
        if self.task == "multiclass":
            from matplotlib.colors import ListedColormap

            k = outputs.shape[1]
            winner = outputs.argmax(axis=1).reshape(shape)
            image = ax.imshow(winner, origin="lower", extent=self.extent, aspect="auto",
                              cmap=ListedColormap([class_colour(i) for i in range(k)]), alpha=REGION_ALPHA,
                              vmin=-0.5, vmax=k - 0.5, interpolation="nearest")
            ax.contour(self.grid_u, self.grid_v, winner, levels=np.arange(k - 1) + 0.5, colors="#333333",
                       linewidths=1.2)
        elif self.task == "binary":
            surface = outputs.reshape(shape)
            image = ax.imshow(surface, origin="lower", extent=self.extent, aspect="auto", cmap=probability_map(),
                              vmin=0, vmax=1, interpolation="nearest")
            ax.contour(self.grid_u, self.grid_v, surface, levels=[0.5], colors="#333333", linewidths=1.5)
        else:
            image = ax.imshow(outputs.reshape(shape), origin="lower", extent=self.extent, aspect="auto",
                              cmap=PROBABILITY_MAP, norm=norm, interpolation="nearest")
        for name, (x, y) in self.points.items():
            style = TRAIN_MARKER if name == "train" else TEST_MARKER
            if self.task == "regression":
                ax.scatter(x[:, 0], x[:, 1], c=y.astype(float), cmap=PROBABILITY_MAP, norm=image.norm, **style)
            else:
                codes = y.astype(int).ravel()
                ax.scatter(x[:, 0], x[:, 1], c=[class_colour(code) for code in codes], **style)
        ax.set(xlabel=self.axis_names[0], ylabel=self.axis_names[1], xlim=self.extent[:2], ylim=self.extent[2:])
        self._legend(ax)
        return image

    def _legend(self, ax: Any) -> None:
        """Below the plot, outside the data: a swatch per class, then the marker of each split."""
        from matplotlib.lines import Line2D

        from .plots import class_colour

        handles = []
        if self.task != "regression":
            handles += [Line2D([], [], linestyle="", marker="s", markersize=9, markerfacecolor=class_colour(i),
                               markeredgecolor="#1a1a1a", label=f"label {label}")
                        for i, label in enumerate(self.classes or [])]
        for name in self.points:
            style = TRAIN_MARKER if name == "train" else TEST_MARKER
            handles.append(Line2D([], [], linestyle="", marker=style["marker"], markersize=7,
                                  markerfacecolor="#bbbbbb", markeredgecolor=style["edgecolors"],
                                  markeredgewidth=style["linewidths"], label=f"{name} points"))
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=min(len(handles), 5),
                  fontsize="small", frameon=False)
