"""From raw columns to the float matrix a network sees, and back from class indices to labels.

A *table* is an ordered ``dict`` of column name -> 1-D NumPy array: float64 for numeric columns, object
(str) for categorical ones. :class:`Preprocessor` is fitted on the training split only, stored in the
checkpoint as plain data and applied again at predict time, so users never scale by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .config import MlplabError, canonical_input_feature, parse_input_feature, shown

__all__ = ["DataError", "Preprocessor", "TargetEncoder", "as_table", "derive_input_features", "infer_task",
           "task_note"]

Table = dict[str, np.ndarray]


class DataError(MlplabError):
    """The data cannot be used as given (ragged rows, NaN, a missing column, ...)."""


def is_numeric(column: np.ndarray) -> bool:
    return column.dtype.kind in "biuf"


def all_finite(values: np.ndarray) -> bool:
    """One cheap pass: a NaN or infinity makes the sum non-finite; only a sum that overflowed from
    finite values needs the exact, element-wise check."""
    if values.dtype.kind in "biu":
        return True
    with np.errstate(over="ignore", invalid="ignore"):
        total = values.sum()
    return bool(np.isfinite(total)) or bool(np.all(np.isfinite(values)))


MISSING = "(missing)"  # the category a missing text value becomes; parentheses keep it apart from real labels
IMPUTE = ("median", "mean", "none")


def check_fits(encoded: np.ndarray, raw_columns: list[tuple[str, np.ndarray]] | None, where: str) -> None:
    """The encoded matrix must hold only finite numbers: a value finite in the data but beyond the
    model's dtype (-1e39 in float32), or made huge by scaling, would otherwise become inf and then NaN,
    a silently wrong answer."""
    if all_finite(encoded):
        return
    row, column = (int(i) for i in np.argwhere(~np.isfinite(encoded))[0])
    dtype = encoded.dtype.name
    limit = float(np.finfo(encoded.dtype).max)
    name = raw_columns[column][0] if raw_columns and column < len(raw_columns) else f"input {column + 1}"
    value = raw_columns[column][1][row] if raw_columns and column < len(raw_columns) else None
    if value is not None and np.isfinite(value) and abs(float(value)) > limit:
        raise DataError(f"{where}: column '{name}' holds {float(value):g} (row {row + 1}), beyond the range of "
                        f"{dtype} the model computes in (about +-{limit:.3g}); use values within it"
                        + (" or train with --dtype float64" if dtype == "float32" else ""))
    raise DataError(f"{where}: column '{name}' (row {row + 1}) overflows {dtype} once scaled as in training")


def check_trainable(matrix: np.ndarray, names: list[str], where: str, dtype: Any = None) -> None:
    """Training squares and multiplies these values: beyond about sqrt(largest number of the dtype),
    the loss overflows and training "diverges" for a reason that has nothing to do with the learning
    rate. Say so about the data, before training."""
    if matrix.size == 0:
        return
    dtype = np.dtype(dtype or matrix.dtype)
    limit = float(np.sqrt(np.finfo(dtype).max))
    magnitude = np.abs(matrix).max(axis=0) if matrix.ndim == 2 else np.abs(matrix).max(keepdims=True)
    if not np.all(magnitude <= limit):
        column = int(np.flatnonzero(~(magnitude <= limit))[0])
        name = names[column] if column < len(names) else f"column {column + 1}"
        raise DataError(f"{where}: '{name}' holds values up to {float(magnitude[column]):g}, too large to train on "
                        f"in {dtype.name} (the loss overflows beyond about {limit:.3g}); scale them "
                        "(--scale standard) or use --dtype float64")


def is_missing(column: np.ndarray) -> np.ndarray:
    """Missing cells: NaN in a numeric column, None (or NaN) in a text one."""
    if column.dtype.kind == "f":
        return np.isnan(column)
    if column.dtype.kind in "biu":
        return np.zeros(len(column), dtype=bool)
    return np.array([_is_gone(value) for value in column.tolist()], dtype=bool)


def _missing_error(name: str, row: int) -> DataError:
    return DataError(f"column '{name}' has a missing value (row {row + 1}) and this model was trained without "
                     "imputation; fill it, or train with --impute median")


def _fill_numeric(column: np.ndarray, name: str, fill: float | None) -> np.ndarray:
    """``column`` with NaN replaced by ``fill``; infinities and (without a fill) NaN are refused."""
    if all_finite(column):
        return column
    missing = np.isnan(column)
    infinite = ~missing & ~np.isfinite(column)
    if infinite.any():
        raise DataError(f"column '{name}' has an infinite value (row {int(np.flatnonzero(infinite)[0]) + 1}); "
                        "replace it with a finite number or leave it empty (missing)")
    if fill is None:
        raise _missing_error(name, int(np.flatnonzero(missing)[0]))
    return np.where(missing, fill, column)


def _column_scaling(column: np.ndarray, scale: str, weight: np.ndarray | None = None) -> tuple[float, float]:
    """(offset, divisor) so that (x - offset) / divisor is standardised or min-max scaled. With row
    weights, a row of weight 2 counts as that row twice (and one of weight 0 not at all), as scikit-learn's
    sample_weight contract has it."""
    if weight is not None:
        column, weight = column[weight > 0], weight[weight > 0]
    if scale == "standard":
        low = float(np.average(column, weights=weight))
        spread = float(np.sqrt(np.average((column - low) ** 2, weights=weight)))
    elif scale == "minmax":
        low = float(column.min())
        spread = float(column.max()) - low
    else:
        return 0.0, 1.0
    return low, spread if spread > 0 else 1.0  # a constant column stays constant, no division by zero


def derive_input_features(table: Table, terms: list[str]) -> Table:
    """The network's input columns computed from the raw ones: each term is a column (``x1``), a square
    (``x1^2``), a product (``x1*x2``) or a sine (``sin(x1)``) of numeric columns, named as spelled by
    :func:`~mlplab.config.canonical_input_feature`. Columns no term names are left out."""
    derived: Table = {}
    for term in terms:
        kind, names = parse_input_feature(term)
        missing = [name for name in names if name not in table]
        if missing:
            raise DataError(f"input feature {term!r} names no column {missing[0]!r}; columns are {', '.join(table)}")
        columns = [table[name] for name in names]
        if kind != "column" and not all(is_numeric(column) for column in columns):
            raise DataError(f"input feature {term!r} needs numeric columns; {', '.join(names)} holds text")
        if kind == "square":
            value = columns[0] ** 2
        elif kind == "product":
            value = columns[0] * columns[1]
        elif kind == "sin":
            value = np.sin(columns[0])
        else:
            value = columns[0]
        derived[canonical_input_feature(term)] = value
    return derived


def as_table(values: Any, feature_names: list[str]) -> Table:
    """Accept what users pass to ``predict``: a DataFrame, a dict of columns, or rows (array or lists)
    in training column order. Returns the feature columns by name."""
    if hasattr(values, "columns") and hasattr(values, "to_numpy"):  # pandas without importing it
        missing = [name for name in feature_names if name not in values.columns]
        if missing:
            raise DataError(f"the input lacks the feature column(s) {', '.join(missing)} seen in training")
        values = {name: values[name].to_numpy() for name in feature_names}
    if isinstance(values, dict):
        missing = [name for name in feature_names if name not in values]
        if missing:
            raise DataError(f"the input lacks the feature column(s) {', '.join(missing)} seen in training")
        table = {name: np.asarray(values[name]) for name in feature_names}
    else:
        rows = np.asarray(values, dtype=object if _has_text(values) else np.float64)
        if rows.ndim == 1:
            rows = rows.reshape(1, -1)
        if rows.ndim != 2 or rows.shape[1] != len(feature_names):
            got = rows.shape[-1] if rows.ndim else 0
            raise DataError(f"expected {len(feature_names)} feature(s) per row "
                            f"({', '.join(feature_names)}), got {got}")
        table = {name: rows[:, i] for i, name in enumerate(feature_names)}
    return {name: _as_column(column) for name, column in table.items()}


def _is_gone(value: Any) -> bool:
    """None, NaN, pandas' NA: how a missing cell arrives from Python, NumPy or a DataFrame."""
    return value is None or (isinstance(value, float) and value != value) or type(value).__name__ == "NAType"


def _has_text(values: Any) -> bool:
    try:
        return np.asarray(values).dtype.kind in "OUS"
    except ValueError:  # ragged nested lists
        raise DataError("rows have different lengths; every row needs the same features") from None


def _as_column(column: np.ndarray) -> np.ndarray:
    if is_numeric(column):
        return column.astype(np.float64)
    values = [None if _is_gone(value) else value for value in column.tolist()]
    if any(value is None for value in values):  # a missing cell, in a numeric or a text column
        present = [value for value in values if value is not None]
        try:
            np.asarray(present, dtype=np.float64)
        except (TypeError, ValueError):
            return np.array([None if v is None else str(v) for v in values], dtype=object)
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    try:
        return column.astype(np.float64)
    except (TypeError, ValueError):
        return column.astype(str).astype(object)


@dataclass
class Preprocessor:
    """Encodes raw feature columns: numeric as they are, categorical one-hot, then optional scaling.

    ``features`` is a list of ``{"name", "kind", "categories"?, "fill"?}``; ``offset``/``divisor`` act on
    the encoded columns (x - offset) / divisor, identity for one-hot columns and for ``scale="none"``.
    Missing values (``impute`` other than ``"none"``): a numeric feature's ``fill`` (the training
    median or mean) takes their place; in a text feature they are the category ``"(missing)"`` when
    training had some, else an all-zero one-hot row.
    With ``input_features`` (terms such as ``x1^2``, see :func:`derive_input_features`) the network's
    inputs are computed from the raw columns ``raw_names`` first; ``features`` then describes the terms.
    """

    features: list[dict[str, Any]]
    scale: str = "none"
    offset: list[float] = field(default_factory=list)
    divisor: list[float] = field(default_factory=list)
    unknown_categories: str = "error"
    input_features: list[str] | None = None
    raw_names: list[str] | None = None
    impute: str = "none"  # checkpoints from before imputation existed refuse missing values

    @property
    def feature_names(self) -> list[str]:
        """The raw columns a user passes to predict."""
        return list(self.raw_names) if self.input_features else self.column_names

    @property
    def column_names(self) -> list[str]:
        """The columns the network's inputs come from: the feature columns, or the input-feature terms."""
        return [feature["name"] for feature in self.features]

    @property
    def encoded_names(self) -> list[str]:
        """The feature each encoded column comes from (a categorical feature gives several)."""
        widths = [len(f["categories"]) if f["kind"] == "categorical" else 1 for f in self.features]
        return [f["name"] for f, width in zip(self.features, widths) for _ in range(width)]

    @property
    def changes_input(self) -> bool:
        """True when the network's input differs from the raw row (one-hot, scaling or input features)."""
        return not self.all_numeric or self.scale != "none" or bool(self.input_features)

    @property
    def n_inputs(self) -> int:
        return sum(len(f["categories"]) if f["kind"] == "categorical" else 1 for f in self.features)

    @classmethod
    def fit(cls, table: Table, scale: str = "none", unknown_categories: str = "error",
            input_features: list[str] | None = None, impute: str = "none",
            weight: np.ndarray | None = None) -> Preprocessor:
        """Learn the columns' kinds, the categories, the fill for missing values (``impute``) and
        (``scale``) each numeric column's offset and divisor (weighting rows by ``weight``), one column
        at a time: no encoded copy of the data is made here."""
        raw_names = list(table)
        if input_features:
            input_features = [canonical_input_feature(term) for term in input_features]
            table = derive_input_features(table, input_features)
        features: list[dict[str, Any]] = []
        offset: list[float] = []
        divisor: list[float] = []
        for name, column in table.items():
            if is_numeric(column):
                feature: dict[str, Any] = {"name": name, "kind": "numeric"}
                if impute != "none":
                    feature["fill"] = _fill_value(column, name, impute)
                column = _fill_numeric(column, name, feature.get("fill"))
                features.append(feature)
                low, spread = _column_scaling(column, scale, weight)
                offset.append(low)
                divisor.append(spread)
            else:
                missing = is_missing(column)
                if missing.any() and impute == "none":
                    raise _missing_error(name, int(np.flatnonzero(missing)[0]))
                categories = sorted({str(v) for v in column[~missing].tolist()}
                                    | ({MISSING} if missing.any() else set()))
                features.append({"name": name, "kind": "categorical", "categories": categories})
                offset += [0.0] * len(categories)  # one-hot columns stay 0/1
                divisor += [1.0] * len(categories)
        return cls(features, scale, offset, divisor, unknown_categories, input_features or None,
                   raw_names if input_features else None, impute)

    @property
    def all_numeric(self) -> bool:
        return all(feature["kind"] == "numeric" for feature in self.features)

    def transform_matrix(self, matrix: np.ndarray, dtype: Any = np.float32, where: str = "input") -> np.ndarray:
        """:meth:`transform` for a numeric matrix in training column order, without copying it when it
        already has ``dtype`` and no scaling applies (the scikit-learn estimators' arrays)."""
        if self.input_features:
            return self.transform({name: matrix[:, i] for i, name in enumerate(self.raw_names)}, dtype, where)
        if not all_finite(matrix):  # rare: impute (or refuse) column by column, on a copy
            matrix = np.column_stack([_fill_numeric(matrix[:, i], feature["name"], feature.get("fill"))
                                      for i, feature in enumerate(self.features)])
        with np.errstate(over="ignore", invalid="ignore"):  # reported below, as one error naming the value
            encoded = matrix.astype(dtype, copy=False)
            if self.scale != "none":
                encoded = (encoded - np.asarray(self.offset, dtype=dtype)) / np.asarray(self.divisor, dtype=dtype)
        check_fits(encoded, [(name, matrix[:, i]) for i, name in enumerate(self.feature_names)]
                   if matrix.ndim == 2 and matrix.shape[1] == len(self.features) else None, where)
        return encoded

    def transform(self, table: Table, dtype: Any = np.float32, where: str = "input") -> np.ndarray:
        """Encode a table with the training columns into a matrix of ``dtype``, written in place column
        by column (no float64 intermediate the size of the data)."""
        if self.input_features:  # a missing raw value makes its terms missing, imputed below
            table = derive_input_features({name: table[name] for name in self.raw_names}, self.input_features)
        n_rows = len(next(iter(table.values()))) if table else 0
        encoded = np.empty((n_rows, self.n_inputs), dtype=dtype)
        raw_columns: list[tuple[str, np.ndarray]] = []  # (name, data) for each encoded column, for messages
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, naming the value
            self._fill(table, encoded, raw_columns)
        check_fits(encoded, raw_columns, where)
        return encoded

    def _fill(self, table: Table, encoded: np.ndarray, raw_columns: list[tuple[str, np.ndarray]]) -> None:
        dtype = encoded.dtype
        column_index = 0
        for feature in self.features:
            column = table[feature["name"]]
            if feature["kind"] == "numeric":
                if not is_numeric(column):
                    raise DataError(f"column '{feature['name']}' was numeric in training but holds text now")
                filled = _fill_numeric(column, feature["name"], feature.get("fill"))
                encoded[:, column_index] = filled
                raw_columns.append((feature["name"], filled))
                column_index += 1
            else:
                width = len(feature["categories"])
                encoded[:, column_index:column_index + width] = self._one_hot(feature, column)
                raw_columns += [(feature["name"], np.zeros(len(column)))] * width
                column_index += width
        if self.scale != "none":
            encoded -= np.asarray(self.offset, dtype=dtype)
            encoded /= np.asarray(self.divisor, dtype=dtype)

    def _one_hot(self, feature: dict[str, Any], column: np.ndarray) -> np.ndarray:
        categories = feature["categories"]
        index = {category: i for i, category in enumerate(categories)}
        missing = is_missing(column)
        if missing.any() and MISSING not in index and self.impute == "none":
            raise _missing_error(feature["name"], int(np.flatnonzero(missing)[0]))
        values = [MISSING if gone else (v if isinstance(v, str) else str(v))
                  for v, gone in zip(column.tolist(), missing.tolist())]
        unseen = sorted({v for v in values if v not in index and v != MISSING})
        if unseen and self.unknown_categories == "error":
            raise DataError(f"column '{feature['name']}' has categories unseen in training: "
                            f"{', '.join(map(repr, unseen[:5]))}; known: {', '.join(map(repr, categories[:10]))} "
                            "(train with unknown_categories='ignore' to encode them as all zeros)")
        encoded = np.zeros((len(values), len(categories)))
        for row, value in enumerate(values):
            if value in index:
                encoded[row, index[value]] = 1.0
        return encoded

    def to_dict(self) -> dict[str, Any]:
        values = {"features": self.features, "scale": self.scale, "offset": self.offset,
                  "divisor": self.divisor, "unknown_categories": self.unknown_categories, "impute": self.impute}
        if self.input_features:  # older mlplab reads checkpoints without them as before
            values.update(input_features=self.input_features, raw_names=self.raw_names)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Preprocessor:
        return cls(**values)


def unscale_target(values: np.ndarray, scaling: list[float] | None) -> np.ndarray:
    """Network outputs back in the target's units (``scaling`` is ``[mean, std]`` or None)."""
    return values if scaling is None else values * scaling[1] + scaling[0]


def _fill_value(column: np.ndarray, name: str, impute: str) -> float:
    if column.dtype.kind != "f":
        return float(np.median(column) if impute == "median" else column.mean())
    present = column[~np.isnan(column)]
    if len(present) == 0:
        raise DataError(f"column '{name}' has no values at all; leave it out with --drop {name}")
    return float(np.median(present) if impute == "median" else present.mean())


MANY_CLASSES = 20  # an integer target with more distinct values than this is a quantity, not labels


def infer_task(target: np.ndarray, requested: str = "auto") -> str:
    """Strings, booleans and integers mean classification; floats mean regression, and so do integers
    with many distinct values (more than 20, or more than half the rows): a count or a price is not a
    500-class softmax (``requested`` wins; :func:`task_note` says why auto chose)."""
    if requested == "regression":
        if not is_numeric(target):
            raise DataError("the target holds text, which cannot be regressed; use task binary/multiclass "
                            "or a numeric target")
        return "regression"
    if requested == "auto" and target.dtype.kind == "f":
        return "regression"
    n_classes = len(np.unique(target))
    if requested == "auto" and target.dtype.kind in "iu" and _many(n_classes, len(target)):
        return "regression"
    if n_classes < 2:
        raise DataError(f"the target has a single class ({shown(target[0])}); classification needs at least two")
    if requested == "binary" and n_classes != 2:
        raise DataError(f"task binary needs exactly 2 classes, the target has {n_classes}; use multiclass")
    return "binary" if n_classes == 2 and requested != "multiclass" else "multiclass"


def _many(n_classes: int, n_rows: int) -> bool:
    return n_classes > MANY_CLASSES or (n_classes > 10 and n_classes > n_rows // 2)


def task_note(target: np.ndarray, requested: str, task: str) -> str:
    """Why ``auto`` chose ``task``, for the first lines ``train`` prints ("" when the choice is plain)."""
    if requested != "auto":
        return ""
    if task == "regression" and target.dtype.kind in "iu":
        return (f"integer target with {len(np.unique(target))} distinct values, taken as a quantity; "
                "--task multiclass to classify")
    if task == "regression":
        return "numbers with decimals in the target; --task multiclass if they are labels"
    return ""


@dataclass
class TargetEncoder:
    """Class labels (ints or strings, kept as they were) <-> indices 0..k-1. For regression the
    identity, or with ``scaling = [mean, std]`` the standardised target (Adam's default step suits a
    target of unit scale; one in the hundreds takes thousands of epochs to reach)."""

    task: str
    classes: list[Any] | None = None
    scaling: list[float] | None = None

    @classmethod
    def fit(cls, target: np.ndarray, task: str, standardise: bool = False,
            weight: np.ndarray | None = None) -> TargetEncoder:
        if task == "regression":
            if not standardise:
                return cls(task)
            mean, spread = _column_scaling(target.astype(np.float64), "standard", weight)
            return cls(task, scaling=[mean, spread])
        labels = np.unique(target).tolist()
        if all(isinstance(label, float) and label.is_integer() for label in labels):
            labels = [int(label) for label in labels]  # 0.0/1.0 read from a file are the labels 0 and 1
        return cls(task, labels)

    def encode(self, target: np.ndarray) -> np.ndarray:
        if self.task == "regression":
            if self.scaling is not None:
                return ((target.astype(np.float64) - self.scaling[0]) / self.scaling[1]).astype(np.float32)
            return target.astype(np.float32)
        classes = np.asarray(self.classes)
        if classes.dtype.kind in "biuf" and target.dtype.kind in "biuf":  # numbers: a binary search each
            codes = np.minimum(np.searchsorted(classes, target), len(classes) - 1)
            if np.array_equal(classes[codes], target):
                return codes.astype(np.float32) if self.task == "binary" else codes.astype(np.int64)
        index = {label: i for i, label in enumerate(self.classes or [])}
        # Look up each distinct value once (a million rows hold a handful of labels).
        distinct, inverse = np.unique(target, return_inverse=True)
        keys = [int(v) if isinstance(v, float) and v.is_integer() else v for v in distinct.tolist()]
        unknown = [str(key) for key in keys if key not in index]
        if unknown:
            raise DataError(f"the target has labels unseen in training: {', '.join(unknown[:5])}")
        codes = np.array([index[key] for key in keys], dtype=np.int64)[inverse.reshape(-1)]
        return codes.astype(np.float32) if self.task == "binary" else codes

    def decode(self, codes: np.ndarray) -> np.ndarray:
        if self.task == "regression":
            return unscale_target(codes, self.scaling)
        return np.asarray(self.classes)[codes.astype(np.int64)]
