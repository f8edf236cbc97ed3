"""Data: the built-in 2-D generators (``xor-blobs`` is the tutorial's), your own files, splits, scaling.

Generators draw the training and the test set by two calls on one seeded ``RandomState``, exactly as
the tutorial calls ``make_blobs`` twice; ``xor_blobs`` reproduces scikit-learn's ``make_blobs`` bit for
bit without importing scikit-learn (which would cost ~0.8 s at start-up).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import Config, DataConfig, shown
from .preprocess import DataError, Preprocessor, TargetEncoder, check_trainable, infer_task, is_missing, task_note
from .readers import read_header, read_table

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
    if name not in GENERATORS:
        raise DataError(f"unknown data set {name!r}; the built-in ones are {', '.join(GENERATORS)}")
    for key, value in (("n_train", n_train), ("n_test", n_test)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise DataError(f"{key} must be a whole number >= 1, got {shown(value)}")
    from .resources import check_data_fits

    check_data_fits(int(n_train) + int(n_test), 2)
    generator = GENERATORS[name]
    noise = generator.noise if noise is None else noise
    n_classes = n_classes or generator.n_classes
    rs = np.random.RandomState(seed)
    x_train, y_train = generator.function(n_train, noise, n_classes, rs)
    x_test, y_test = generator.function(n_test, noise, n_classes, rs)
    return x_train, y_train, x_test, y_test


# --- splits -----------------------------------------------------------------------------------------

def split_indices(n: int, fraction: float, labels: np.ndarray | None, rs: np.random.RandomState):
    """Seeded (kept, held-out) index arrays; stratified by ``labels`` when given (each class keeps its
    share, and one at least stays in training)."""
    if labels is None:
        order = rs.permutation(n)
        held = int(round(fraction * n))
        return np.sort(order[held:]), np.sort(order[:held])
    # Each class's rows in one stable sort of the class codes, not a scan of all rows per class; the
    # kept rows are the complement by a mask, not np.setdiff1d (two hash-uniques: 1.7 s of a 1M-row run).
    # The permutations drawn, and so the split, are the same as class by class.
    classes, codes = np.unique(labels, return_inverse=True)
    by_class = np.argsort(codes.reshape(-1), kind="stable")
    bounds = np.cumsum(np.bincount(codes.reshape(-1), minlength=len(classes)))
    held_parts = []
    for start, stop in zip([0, *bounds[:-1]], bounds):
        members = rs.permutation(by_class[start:stop])
        held_parts.append(members[: min(int(round(fraction * len(members))), len(members) - 1)])
    held_out = np.sort(np.concatenate(held_parts))
    if len(held_out) == 0:  # every class too small to give one up: a plain split
        return split_indices(n, fraction, None, rs)
    kept = np.ones(n, dtype=bool)
    kept[held_out] = False
    return np.flatnonzero(kept), held_out


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
        dropped = self.source.get("dropped_rows", 0) + self.source.get("dropped_test_rows", 0)
        dropped = f" ({dropped} rows without a target value dropped)" if dropped else ""
        if self.source.get("identifiers"):
            names = ", ".join(self.source["identifiers"])
            dropped += f" (left out {names}: every value differs, an identifier; --categorical to use it)"
        n_train = len(self.x_train)
        if self.source.get("shard"):  # a data-parallel rank: the whole file's rows, then this rank's share
            shard = self.source["shard"]
            test = f" / {shard['test_rows']} test" if shard["test_rows"] else ""
            dropped += (f"; {shard['ranks']} ranks read {shard['row_groups']} row groups in turn, this rank "
                        f"{n_train} training rows")
            n_train = sum(shard["train_rows"])
        return (f"{self.source['name']}: {n_train} train{val}{test} rows{dropped}, "
                f"{len(self.preprocessor.features)} features, task {self.task}"
                + (f" ({self.source['task_note']})" if self.source.get("task_note") else ""))


def load_dataset(config: Config) -> Dataset:
    """Make or read the data a config names, split it, fit the preprocessing on the training split."""
    data = config.data
    if data.path is not None:
        from .sharded import active_shard

        shard = active_shard(config)  # a data-parallel rank reading its row groups of a Parquet file
        if shard is not None:
            return shard.load(config)
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
    note = task_note(y_train, config.model.task, task) if data.path is not None else ""
    if note:
        source["task_note"] = note
    target = TargetEncoder.fit(y_train, task, standardise=data.scale_target)
    return build_dataset(config, train, y_train, test, y_test, source, target)


def build_dataset(config: Config, train: Table | np.ndarray, y_train: np.ndarray, test: Table | None,
                  y_test: np.ndarray | None, source: dict[str, Any], target: TargetEncoder,
                  weight: np.ndarray | None = None, feature_names: list[str] | None = None) -> Dataset:
    """Split validation rows off ``train`` (seeded, stratified), fit the preprocessing on what remains,
    encode every split. ``train`` is a table, or a numeric matrix with ``feature_names`` (used as it
    is, without a copy, where its dtype fits and no scaling applies)."""
    data = config.data
    dtype = np.dtype(config.model.dtype)
    is_matrix = isinstance(train, np.ndarray)

    def encode(processor: Preprocessor, rows: Table | np.ndarray, split: str) -> np.ndarray:
        where = f"{source.get('name', 'data')} ({split} rows)"
        if isinstance(rows, np.ndarray):
            matrix = processor.transform_matrix(rows, dtype, where)
        else:
            matrix = processor.transform(rows, dtype, where)
        check_trainable(matrix, processor.encoded_names, where)
        return matrix

    x_val = y_val = None
    if data.val_fraction > 0:
        rs = np.random.RandomState([config.seed, 2])
        stratify = None if target.task == "regression" else y_train
        keep, held = split_indices(len(y_train), data.val_fraction, stratify, rs)
        if len(held) == 0 or len(keep) == 0:
            raise DataError(f"{len(y_train)} training rows are too few to hold out --val-fraction "
                            f"{data.val_fraction:g} for validation (a data file's default); give --val-fraction 0 "
                            "--no-early-stopping, or more rows")
        x_val, y_val = _take(train, held), y_train[held]
        train, y_train = _take(train, keep), y_train[keep]
        weight = None if weight is None else weight[keep]
    columns = train
    if is_matrix:  # named column views, no copy
        names = feature_names or [f"x{i}" for i in range(train.shape[1])]
        columns = {name: train[:, i] for i, name in enumerate(names)}
    preprocessor = Preprocessor.fit(columns, data.scale, data.unknown_categories, data.input_features,
                                    impute=data.impute, weight=weight)
    if target.task == "regression":  # the targets are squared in the loss, in the model's precision
        for split, values in (("training", y_train), ("test", y_test), ("validation", y_val)):
            if values is not None:
                check_trainable(np.asarray(values, dtype=np.float64), ["target"],
                                f"{source.get('name', 'data')} ({split} rows)", dtype)
    return Dataset(
        x_train=encode(preprocessor, train, "training"), y_train=target.encode(y_train),
        x_test=None if test is None else encode(preprocessor, test, "test"),
        y_test=None if y_test is None else target.encode(y_test),
        x_val=None if x_val is None else encode(preprocessor, x_val, "validation"),
        y_val=None if y_val is None else target.encode(y_val),
        task=target.task, preprocessor=preprocessor, target=target, source=source,
        weight=None if weight is None else weight.astype(dtype))


def _take(rows: Table | np.ndarray, index: np.ndarray) -> Table | np.ndarray:
    return rows[index] if isinstance(rows, np.ndarray) else {k: v[index] for k, v in rows.items()}


def _read_files(data: DataConfig, seed: int, task: str):
    target_name = data.target or "y"
    features, y = _read_file(data, data.path, target_name, data.features)
    source = {"name": Path(data.path).name, "path": str(data.path), "target": target_name,
              "sha256": file_digest(data.path)}
    if not data.features:
        header = read_header(data.path, data.encoding)
        left_out = [name for name in header if name not in features and name != target_name
                    and name not in (data.drop or ())]
        if left_out:
            source["identifiers"] = left_out
    features, y, source["dropped_rows"] = drop_missing_target(features, y, data.path, target_name)
    if data.test_path:
        test_features, y_test = _read_file(data, data.test_path, target_name, list(features))
        test_features, y_test, source["dropped_test_rows"] = drop_missing_target(
            test_features, y_test, data.test_path, target_name)
        source["test_path"] = str(data.test_path)
        return features, y, test_features, y_test, source
    stratify = None if infer_task(y, task) == "regression" else y
    keep, held = split_indices(len(y), data.test_fraction, stratify, np.random.RandomState([seed, 1]))
    if len(held) == 0 or len(keep) == 0:
        raise DataError(f"{data.path}: {len(y)} rows are too few to split off a test set "
                        f"(test_fraction {data.test_fraction}); add rows or give a test file")
    return ({k: v[keep] for k, v in features.items()}, y[keep],
            {k: v[held] for k, v in features.items()}, y[held], source)


def check_column_options(data: DataConfig, columns: list[str], path: Any, target: str) -> None:
    """--categorical, --numeric and --drop must name columns of the file, and --drop not the target."""
    for option in ("categorical", "numeric", "drop"):
        unknown = [name for name in getattr(data, option) or () if name not in columns]
        if unknown:
            raise DataError(f"{path}: --{option} names no column {', '.join(unknown)}; "
                            f"columns are {', '.join(columns)}")
    if target in (data.drop or ()):
        raise DataError(f"--drop names the target column '{target}'; choose another --target or keep it")


def _read_file(data: DataConfig, path: str, target: str, features: list[str] | None):
    """Read one data file with the column options of ``data``, checking every named column exists."""
    table = read_table(path, encoding=data.encoding, text_columns=data.categorical or (),
                       numeric_columns=data.numeric or ())
    check_column_options(data, list(table), path, target)
    names = features or [name for name in table if name != target and name not in (data.drop or ())
                          and not (name not in (data.categorical or ()) and is_identifier(table[name]))]
    return select_columns(table, target, names, path)


def is_identifier(column: np.ndarray) -> bool:
    """A text column whose every value differs (a name, an ID) teaches nothing and no new row's value
    was seen in training: left out of the default features (``--categorical`` keeps it)."""
    return column.dtype.kind == "O" and len(column) > 20 and len(set(column.tolist())) == len(column)


def drop_missing_target(features: Table, y: np.ndarray, path: Any, target: str):
    """Rows whose target is missing cannot be learnt from: drop them (the count is reported)."""
    missing = is_missing(y)
    if not missing.any():
        return features, y, 0
    if missing.all():
        raise DataError(f"{path}: the target column '{target}' has no values")
    keep = ~missing
    y = y[keep]
    if y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0) and np.abs(y).max() < 2**53:
        y = y.astype(np.int64)  # integer labels read as float only because some were missing
    return {k: v[keep] for k, v in features.items()}, y, int(missing.sum())


def read_input(path: str | Path, preprocessor: Preprocessor, *, encoding: str = "utf-8") -> Table:
    """Read rows to predict or score: the model's text features as text (``01234`` stays a category),
    its numeric features checked to hold numbers, other columns as they come."""
    kinds = {feature["name"]: feature["kind"] for feature in preprocessor.features}
    return read_table(path, encoding=encoding,
                      text_columns=[name for name, kind in kinds.items() if kind == "categorical"],
                      numeric_columns=[name for name, kind in kinds.items() if kind == "numeric"])


def select_columns(table: Table, target: str | None, features: list[str] | None, path: Any):
    """Split a table into (feature columns, target column), checking the names exist."""
    if target is not None and target not in table:
        raise DataError(f"{path}: no target column '{target}'; columns are {', '.join(table)}")
    names = features or [name for name in table if name != target]
    missing = [name for name in names if name not in table]
    if missing:
        raise DataError(f"{path}: no column(s) {', '.join(missing)}; columns are {', '.join(table)}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataError(f"the feature list names {', '.join(repeated)} more than once; name each column once")
    if not names:
        raise DataError(f"{path}: no feature columns besides the target '{target}'")
    return {name: table[name] for name in names}, (table[target] if target is not None else None)


def describe_data_source(source: dict[str, Any], path: str) -> str:
    """A line saying which data file a saved run names and will now be read, and whether it changed."""
    note = ""
    if source.get("sha256") and Path(path).is_file() and file_digest(path) != source["sha256"]:
        note = "; it has changed since the run was trained"
    return f"data: reading {path} (named in the run){note}"


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file, read in blocks: a large data file is never held in memory whole for it."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
