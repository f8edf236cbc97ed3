"""Data: the built-in 2-D generators (``xor-blobs`` is the tutorial's), your own files, splits, scaling.

Generators draw the training and the test set by two calls on one seeded ``RandomState``, exactly as
the tutorial calls ``make_blobs`` twice; ``xor_blobs`` reproduces scikit-learn's ``make_blobs`` bit for
bit without importing scikit-learn (which would cost ~0.8 s at start-up).
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import Config, DataConfig
from .preprocess import DataError, Preprocessor, TargetEncoder, check_finite, infer_task

__all__ = ["GENERATORS", "Dataset", "DataError", "generate", "load_dataset", "read_table"]

Table = dict[str, np.ndarray]
XOR_CENTERS = np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])


# --- generators: (n, noise, n_classes, random_state) -> (X float64 (n, 2), y) -------------------------

def _blob_points(n: int, centers: np.ndarray, std: float, rs: np.random.RandomState):
    """scikit-learn's make_blobs(shuffle=True) step for step: per-centre normals, then one shuffle."""
    per_center = [n // len(centers)] * len(centers)
    for i in range(n % len(centers)):
        per_center[i] += 1
    x = np.concatenate([rs.normal(loc=c, scale=std, size=(k, 2)) for c, k in zip(centers, per_center)])
    y = np.repeat(np.arange(len(centers)), per_center)
    order = np.arange(n)
    rs.shuffle(order)
    return x[order], y[order]


def xor_blobs(n, noise, n_classes, rs):
    """The tutorial's data: blobs at (1,1), (-1,-1) -> 0 and (1,-1), (-1,1) -> 1, std ``noise``."""
    x, cluster = _blob_points(n, XOR_CENTERS, noise, rs)
    return x, np.where(cluster >= 2, 1, 0)  # label_map({0,1} -> 0, {2,3} -> 1), without the t_ typo


def blobs(n, noise, n_classes, rs):
    angles = 2 * np.pi * np.arange(n_classes) / n_classes
    centers = 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return _blob_points(n, centers, noise, rs)


def moons(n, noise, n_classes, rs):
    y = rs.randint(0, 2, size=n)
    angle = rs.uniform(0, np.pi, size=n)
    x = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    x[y == 1] = np.stack([1 - np.cos(angle[y == 1]), 0.5 - np.sin(angle[y == 1])], axis=1)
    return x + rs.normal(scale=noise, size=x.shape), y


def circles(n, noise, n_classes, rs):
    y = rs.randint(0, 2, size=n)
    angle = rs.uniform(0, 2 * np.pi, size=n)
    radius = np.where(y == 1, 0.5, 1.0)
    x = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return x + rs.normal(scale=noise, size=x.shape), y


def spiral(n, noise, n_classes, rs):
    """``n_classes`` interleaved arms, 1.25 turns each, radius 0.2 to 2."""
    y = rs.randint(0, n_classes, size=n)
    t = rs.uniform(0, 1, size=n)
    angle = 2 * np.pi * y / n_classes + 2.5 * np.pi * t
    radius = 0.2 + 1.8 * t
    x = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return x + rs.normal(scale=noise, size=x.shape), y


def xor(n, noise, n_classes, rs):
    """Uniform points in [-1, 1]^2; label 1 where the signs of the coordinates differ."""
    x = rs.uniform(-1, 1, size=(n, 2))
    y = (x[:, 0] * x[:, 1] < 0).astype(int)
    return x + rs.normal(scale=noise, size=x.shape), y


def gaussian_quantiles(n, noise, n_classes, rs):
    """A standard normal cloud cut into ``n_classes`` rings holding equal shares of the points."""
    x = rs.normal(size=(n, 2))
    order = np.argsort((x**2).sum(axis=1), kind="stable")
    y = np.empty(n, dtype=int)
    y[order] = np.arange(n) * n_classes // n
    return x + rs.normal(scale=noise, size=x.shape), y


def linear(n, noise, n_classes, rs):
    """Regression: y = 1.5 x1 - 0.75 x2 + 0.5 + noise, x uniform in [-1, 1]^2."""
    x = rs.uniform(-1, 1, size=(n, 2))
    return x, 1.5 * x[:, 0] - 0.75 * x[:, 1] + 0.5 + rs.normal(scale=noise, size=n)


@dataclass(frozen=True)
class Generator:
    function: Callable[..., tuple[np.ndarray, np.ndarray]]
    noise: float
    n_classes: int | None
    summary: str


GENERATORS: dict[str, Generator] = {
    "xor-blobs": Generator(xor_blobs, 0.3, None, "the tutorial's four blobs, XOR-labelled (binary)"),
    "blobs": Generator(blobs, 0.5, 3, "k Gaussian blobs on a circle (multiclass)"),
    "moons": Generator(moons, 0.1, None, "two interleaving half circles (binary)"),
    "circles": Generator(circles, 0.05, None, "a circle inside a circle (binary)"),
    "spiral": Generator(spiral, 0.1, 2, "k interleaved spiral arms (binary or multiclass)"),
    "xor": Generator(xor, 0.0, None, "uniform square, label = signs differ (binary)"),
    "gaussian-quantiles": Generator(gaussian_quantiles, 0.0, 2, "Gaussian cloud cut into k rings"),
    "linear": Generator(linear, 0.1, None, "y = 1.5 x1 - 0.75 x2 + 0.5 + noise (regression)"),
}


def generate(name: str, n_train: int, n_test: int, noise: float | None = None, n_classes: int | None = None,
             seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Draw a built-in data set: ``(x_train, y_train, x_test, y_test)``.

    Examples
    --------
    >>> from mlplab import generate
    >>> x_train, y_train, x_test, y_test = generate("xor-blobs", 80, 20, seed=0)
    >>> x_train.shape, sorted(set(y_train.tolist()))
    ((80, 2), [0, 1])
    """
    generator = GENERATORS[name]
    noise = generator.noise if noise is None else noise
    n_classes = n_classes or generator.n_classes
    rs = np.random.RandomState(seed)
    x_train, y_train = generator.function(n_train, noise, n_classes, rs)
    x_test, y_test = generator.function(n_test, noise, n_classes, rs)
    return x_train, y_train, x_test, y_test


# --- files ------------------------------------------------------------------------------------------

def read_table(path: str | Path) -> Table:
    """Read a CSV (header row), Parquet or .npz (arrays ``X`` and ``y``) file into named columns.

    CSV columns whose every value reads as an int become int64, as a number float64, otherwise text.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        table = _read_npz(path)
    elif suffix in (".parquet", ".pq"):
        table = _read_parquet(path)
    else:
        table = _read_csv(path)
    if not table or len(next(iter(table.values()))) == 0:
        raise DataError(f"{path}: the file holds no data rows")
    check_finite(table, str(path))
    return table


def _read_csv(path: Path) -> Table:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    if not rows or not rows[0]:
        raise DataError(f"{path}: the file is empty; it needs a header row and data rows")
    header = [name.strip() for name in rows[0]]
    body = [row for row in rows[1:] if row]
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DataError(f"{path}, line {line}: {len(row)} values but the header names {len(header)} "
                            "columns; every row needs one value per column")
    return {name: _parse_column([row[i].strip() for row in body], name, path)
            for i, name in enumerate(header)}


def _parse_column(values: list[str], name: str, path: Path) -> np.ndarray:
    for dtype in (np.int64, np.float64):
        try:
            return np.array(values, dtype=dtype)
        except ValueError:
            pass
    if "" in values:
        raise DataError(f"{path}: column '{name}' has an empty value (line {values.index('') + 2}); "
                        "fill or remove it first")
    return np.array(values, dtype=object)


def _read_parquet(path: Path) -> Table:
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        raise DataError("reading Parquet needs pyarrow: pip install 'mlplab[parquet]'") from None
    try:
        arrow = parquet.read_table(path)
    except Exception as error:  # pyarrow raises several types for a bad file
        raise DataError(f"{path}: not a readable Parquet file ({error})") from None
    table = {}
    for name in arrow.column_names:
        column = arrow.column(name).to_numpy(zero_copy_only=False)
        table[name] = column if column.dtype.kind in "biuf" else column.astype(str).astype(object)
    return table


def _read_npz(path: Path) -> Table:
    try:
        with np.load(path, allow_pickle=False) as arrays:
            x = arrays["X"] if "X" in arrays else arrays["x"]
            y = arrays["y"]
    except (KeyError, ValueError, OSError) as error:
        raise DataError(f"{path}: expected a .npz with numeric arrays X and y ({error})") from None
    if x.ndim != 2 or len(x) != len(y):
        raise DataError(f"{path}: X must be 2-D with as many rows as y has values")
    table = {f"x{i}": x[:, i] for i in range(x.shape[1])}
    table["y"] = y
    return table


# --- splits -----------------------------------------------------------------------------------------

def split_indices(n: int, fraction: float, labels: np.ndarray | None, rs: np.random.RandomState):
    """Seeded (kept, held-out) index arrays; stratified by ``labels`` when given (each class keeps its
    share, and one at least stays in training)."""
    if labels is None:
        order = rs.permutation(n)
        held = int(round(fraction * n))
        return np.sort(order[held:]), np.sort(order[:held])
    held_parts = []
    for label in np.unique(labels):
        members = rs.permutation(np.flatnonzero(labels == label))
        held_parts.append(members[: min(int(round(fraction * len(members))), len(members) - 1)])
    held_out = np.sort(np.concatenate(held_parts))
    return np.setdiff1d(np.arange(n), held_out), held_out


# --- everything a run needs -------------------------------------------------------------------------

@dataclass
class Dataset:
    """Encoded arrays ready for training, plus how they were made (kept in the checkpoint). The test
    split is absent when fitting from arrays (the scikit-learn estimators); ``weight`` holds optional
    per-row training weights."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    task: str
    preprocessor: Preprocessor
    target: TargetEncoder
    source: dict[str, Any]
    weight: np.ndarray | None = None

    @property
    def classes(self) -> list[Any] | None:
        return self.target.classes

    def describe(self) -> str:
        val = f" / {len(self.x_val)} validation" if self.x_val is not None else ""
        test = f" / {len(self.x_test)} test" if self.x_test is not None else ""
        return (f"{self.source['name']}: {len(self.x_train)} train{val}{test} rows, "
                f"{len(self.preprocessor.features)} features, task {self.task}")


def load_dataset(config: Config) -> Dataset:
    """Make or read the data a config names, split it, fit the preprocessing on the training split."""
    data = config.data
    if data.path is None:
        x_train, y_train, x_test, y_test = generate(data.dataset, data.n_train, data.n_test, data.noise,
                                                    data.n_classes, config.seed)
        names = ["x1", "x2"]
        train = {name: x_train[:, i] for i, name in enumerate(names)}
        test = {name: x_test[:, i] for i, name in enumerate(names)}
        source: dict[str, Any] = {"name": data.dataset, "target": "y"}
    else:
        train, y_train, test, y_test, source = _read_files(data, config.seed, config.model.task)
    task = infer_task(y_train, config.model.task)
    return build_dataset(config, train, y_train, test, y_test, source, TargetEncoder.fit(y_train, task))


def build_dataset(config: Config, train: Table | np.ndarray, y_train: np.ndarray, test: Table | None,
                  y_test: np.ndarray | None, source: dict[str, Any], target: TargetEncoder,
                  weight: np.ndarray | None = None, feature_names: list[str] | None = None) -> Dataset:
    """Split validation rows off ``train`` (seeded, stratified), fit the preprocessing on what remains,
    encode every split. ``train`` is a table, or a numeric matrix with ``feature_names`` (used as it
    is, without a copy, where its dtype fits and no scaling applies)."""
    data = config.data
    dtype = np.dtype(config.model.dtype)
    is_matrix = isinstance(train, np.ndarray)

    def encode(processor: Preprocessor, rows: Table | np.ndarray) -> np.ndarray:
        return processor.transform_matrix(rows, dtype) if is_matrix else processor.transform(rows, dtype)

    x_val = y_val = None
    if data.val_fraction > 0:
        rs = np.random.RandomState([config.seed, 2])
        stratify = None if target.task == "regression" else y_train
        keep, held = split_indices(len(y_train), data.val_fraction, stratify, rs)
        if len(held) == 0 or len(keep) == 0:
            raise DataError(f"val_fraction {data.val_fraction} leaves no validation or no training rows")
        x_val, y_val = _take(train, held), y_train[held]
        train, y_train = _take(train, keep), y_train[keep]
        weight = None if weight is None else weight[keep]
    columns = train
    if is_matrix:  # named column views, no copy
        names = feature_names or [f"x{i}" for i in range(train.shape[1])]
        columns = {name: train[:, i] for i, name in enumerate(names)}
    preprocessor = Preprocessor.fit(columns, data.scale, data.unknown_categories, data.input_features)
    return Dataset(
        x_train=encode(preprocessor, train), y_train=target.encode(y_train),
        x_test=None if test is None else preprocessor.transform(test, dtype),
        y_test=None if y_test is None else target.encode(y_test),
        x_val=None if x_val is None else encode(preprocessor, x_val),
        y_val=None if y_val is None else target.encode(y_val),
        task=target.task, preprocessor=preprocessor, target=target, source=source,
        weight=None if weight is None else weight.astype(dtype))


def _take(rows: Table | np.ndarray, index: np.ndarray) -> Table | np.ndarray:
    return rows[index] if isinstance(rows, np.ndarray) else {k: v[index] for k, v in rows.items()}


def _read_files(data: DataConfig, seed: int, task: str):
    table = read_table(data.path)
    target_name = data.target or "y"
    features, y = select_columns(table, target_name, data.features, data.path)
    source = {"name": Path(data.path).name, "path": str(data.path), "target": target_name,
              "sha256": file_digest(data.path)}
    if data.test_path:
        test_features, y_test = select_columns(read_table(data.test_path), target_name, list(features),
                                               data.test_path)
        source["test_path"] = str(data.test_path)
        return features, y, test_features, y_test, source
    stratify = None if task == "regression" or (task == "auto" and y.dtype.kind == "f") else y
    keep, held = split_indices(len(y), data.test_fraction, stratify, np.random.RandomState([seed, 1]))
    if len(held) == 0 or len(keep) == 0:
        raise DataError(f"{data.path}: {len(y)} rows are too few to split off a test set "
                        f"(test_fraction {data.test_fraction}); add rows or give a test file")
    return ({k: v[keep] for k, v in features.items()}, y[keep],
            {k: v[held] for k, v in features.items()}, y[held], source)


def select_columns(table: Table, target: str | None, features: list[str] | None, path: Any):
    """Split a table into (feature columns, target column), checking the names exist."""
    if target is not None and target not in table:
        raise DataError(f"{path}: no target column '{target}'; columns are {', '.join(table)}")
    names = features or [name for name in table if name != target]
    missing = [name for name in names if name not in table]
    if missing:
        raise DataError(f"{path}: no column(s) {', '.join(missing)}; columns are {', '.join(table)}")
    if not names:
        raise DataError(f"{path}: no feature columns besides the target '{target}'")
    return {name: table[name] for name in names}, (table[target] if target is not None else None)


def file_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
