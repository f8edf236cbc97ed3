"""What the page draws: the plane the data live on, and one frame of the network's state over it.

The boundary view is a plane of two raw columns (the built-in data's x1, x2, or two columns of an upload,
the others held at their training mean or mode) or the first two principal components of the raw numeric
columns. :class:`Plane` maps rows to plane coordinates and back; the grid over the plane is encoded once
(input features, one-hot, scaling: the model's own preprocessing) and every frame only runs the forward
pass (``backprop.forward``, float64 NumPy) over it, keeping each hidden unit's output for its heatmap.
Arrays travel as base64 bytes: 8-bit images and float32 weights.
"""

from __future__ import annotations

import base64
from collections import Counter
from typing import Any

import numpy as np

from ..backprop import forward
from ..metrics import probabilities_from_logits
from ..preprocess import Preprocessor, is_numeric

__all__ = ["Plane", "Renderer"]

Table = dict[str, np.ndarray]


def b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


class Plane:
    """Rows <-> plane coordinates for the boundary view.

    Parameters
    ----------
    train : dict of str to ndarray
        The raw training columns (the model's feature columns).
    axes : (str, str)
        The two columns spanning the plane (ignored with ``pca``).
    pca : bool
        Span the plane by the first two principal components of the standardised numeric columns.
    """

    def __init__(self, train: Table, axes: tuple[str, str], pca: bool = False):
        self.columns = list(train)
        numeric = [name for name in self.columns if is_numeric(train[name])]
        self.fill = {name: (float(train[name].mean()) if name in numeric
                            else Counter(train[name].tolist()).most_common(1)[0][0]) for name in self.columns}
        self.pca = pca and len(numeric) > 2
        if self.pca:
            self.numeric = numeric
            matrix = np.stack([train[name] for name in numeric], axis=1).astype(np.float64)
            self.mean, self.std = matrix.mean(axis=0), matrix.std(axis=0)
            self.std[self.std == 0] = 1.0
            self.components = np.linalg.svd((matrix - self.mean) / self.std, full_matrices=False)[2][:2]
            self.names = ["PC 1", "PC 2"]
        else:
            self.names = list(axes)

    def project(self, table: Table) -> np.ndarray:
        if self.pca:
            matrix = np.stack([table[name] for name in self.numeric], axis=1).astype(np.float64)
            return ((matrix - self.mean) / self.std) @ self.components.T
        return np.stack([np.asarray(table[name], dtype=np.float64) for name in self.names], axis=1)

    def lift(self, plane: np.ndarray) -> Table:
        """Plane coordinates -> raw rows: the other columns at their training mean (numbers) or mode."""
        n = len(plane)
        table: Table = {}
        for name in self.columns:
            value = self.fill[name]
            table[name] = np.full(n, value, dtype=np.float64 if isinstance(value, float) else object)
        if self.pca:
            matrix = self.mean + (plane @ self.components) * self.std
            for i, name in enumerate(self.numeric):
                table[name] = matrix[:, i]
        else:
            table[self.names[0]], table[self.names[1]] = plane[:, 0].copy(), plane[:, 1].copy()
        return table


def extent_of(points: np.ndarray) -> list[float]:
    """[u_min, u_max, v_min, v_max]: the points with a 10% margin (a square of side 2 at least)."""
    low, high = points.min(axis=0), points.max(axis=0)
    centre, half = (low + high) / 2, np.maximum((high - low) / 2 * 1.1, 1.0)
    return [float(centre[0] - half[0]), float(centre[0] + half[0]), float(centre[1] - half[1]),
            float(centre[1] + half[1])]


class Renderer:
    """Frames for one model over one plane: boundary image, per-unit heatmaps, weights and biases.

    ``resolution`` is the boundary's side in pixels (100 for the tutorial network); the per-unit heatmaps
    take every ``unit_step``-th pixel of the same forward pass. Bigger networks get a coarser grid so a
    frame stays a few milliseconds.
    """

    def __init__(self, plane: Plane, extent: list[float], preprocessor: Preprocessor, task: str,
                 activation: str, sizes: list[int], resolution: int = 100):
        work = sum(a * b for a, b in zip(sizes, sizes[1:]))
        if work > 4000:  # multiply-adds per grid point; 100 x 100 x 4000 is ~ 40 M, about 20 ms
            resolution = max(40, int(resolution * (4000 / work) ** 0.5))
        self.resolution = resolution
        self.unit_resolution = 25 if resolution >= 50 else resolution // 2
        self.task, self.activation = task, activation
        u = np.linspace(extent[0], extent[1], resolution)
        v = np.linspace(extent[3], extent[2], resolution)  # image rows from the top: v decreasing
        grid_u, grid_v = np.meshgrid(u, v)
        plane_points = np.stack([grid_u.ravel(), grid_v.ravel()], axis=1)
        self.encoded = preprocessor.transform(plane.lift(plane_points), np.float64)
        step = resolution / self.unit_resolution
        picks = np.minimum((np.arange(self.unit_resolution) * step + step / 2).astype(int), resolution - 1)
        self.unit_pixels = (picks[:, None] * resolution + picks[None, :]).ravel()

    def frame(self, layers: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
        """The images and weights of one frame from float64 ``(W, b)`` pairs."""
        result = forward(layers, self.encoded, self.activation)
        logits = result.sums[-1]
        boundary: dict[str, Any] = {"resolution": self.resolution}
        if self.task == "binary":
            probability = probabilities_from_logits(logits[:, 0], "binary")
            boundary["p"] = b64(np.round(probability * 255).astype(np.uint8))
        elif self.task == "multiclass":
            probabilities = probabilities_from_logits(logits, "multiclass")
            boundary["class"] = b64(probabilities.argmax(axis=1).astype(np.uint8))
            boundary["p"] = b64(np.round(probabilities.max(axis=1) * 255).astype(np.uint8))
        else:
            values = logits[:, 0]
            low, high = float(values.min()), float(values.max())
            boundary.update(low=low, high=high,
                            p=b64(np.round((values - low) / (high - low or 1.0) * 255).astype(np.uint8)))
        units = []
        for hidden in result.inputs[1:]:  # each hidden layer's outputs a = f(z) on the grid
            picked = hidden[self.unit_pixels]
            scale = np.maximum(np.abs(picked).max(axis=0), 1e-12)
            image = np.round(picked / scale * 127).astype(np.int8).T  # one row per unit
            units.append({"scale": scale.tolist(), "images": b64(image)})
        return {"boundary": boundary, "units": {"resolution": self.unit_resolution, "layers": units},
                "weights": [{"w": b64(w.astype(np.float32)), "b": b64(b.astype(np.float32)),
                             "shape": list(w.shape)} for w, b in layers]}
