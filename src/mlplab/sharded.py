"""A data-parallel rank's share of a Parquet file: read only its row groups, agree on everything global.

Under ``mlplab train --nproc N`` (or torchrun), when ``data.path`` is a Parquet file with at least N row
groups, rank r reads row groups r, r + N, r + 2N, ... of the columns it needs, plus the *target column of
every row* (one column: 1/21 of a 20-feature file). From that whole column every rank computes what one
process computes: which rows lack a target, the seeded and stratified test and validation rows, the task,
the classes and the target's scaling. Each rank keeps the rows of each split that lie in its row groups.

What one process learns from all training rows is computed from the ranks' parts with collectives, so
every rank holds the same :class:`~mlplab.preprocess.Preprocessor`, equal to one process's:

* a numeric column's missing-value fill: the median exactly (a bisection over the float64 values, one
  all_reduce of counts per step), or the mean (all_reduce of sums and counts, to float64 rounding);
* standard scaling's mean and deviation (two all_reduces of sums, to float64 rounding), min-max's extremes;
* a text column's categories (all_gather of each rank's set), and whether it is an identifier.

The validation rows are gathered to every rank, so all ranks evaluate the same rows with the same weights
and early stopping decides alike everywhere; the test rows go to rank 0, which writes the run. The training
rows stay sharded: memory per rank is its share of the training rows, the validation rows (and on rank 0
the test rows), encoded, and the target column. An error found on one rank (a bad value, an unseen
category) is raised on every rank, so none waits in a collective for a rank that left.
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import Config, MlplabError, canonical_input_feature
from .preprocess import (
    MISSING,
    DataError,
    Preprocessor,
    _missing_error,
    check_trainable,
    derive_input_features,
    is_missing,
    is_numeric,
)
from .readers import parquet_layout, read_table

__all__ = ["Shard", "active_shard", "reading_shards"]

_ACTIVE: contextvars.ContextVar[Shard | None] = contextvars.ContextVar("mlplab_shard", default=None)
Table = dict[str, np.ndarray]


@dataclass
class Shard:
    """One rank's place in a data-parallel run; ``train_rows`` (every rank's count of training rows) is
    set once a file was read in shards, and tells the training step how to batch."""

    rank: int
    world: int
    train_rows: list[int] | None = None

    def load(self, config: Config) -> Any:
        return load_shard(config, self)


@contextlib.contextmanager
def reading_shards(shard: Shard):
    """While inside, :func:`mlplab.data.load_dataset` reads a Parquet file's row groups for ``shard``."""
    token = _ACTIVE.set(shard)
    try:
        yield shard
    finally:
        _ACTIVE.reset(token)


def active_shard(config: Config) -> Shard | None:
    """The shard to read ``config``'s data as, or None: not a worker of several, not Parquet, or fewer
    row groups than ranks (then every rank reads the whole file, as one process does)."""
    shard = _ACTIVE.get()
    if shard is None or shard.world < 2 or Path(config.data.path).suffix.lower() not in (".parquet", ".pq"):
        return None
    if not Path(config.data.path).is_file():
        return None  # the reader's own message, on every rank
    return shard if len(parquet_layout(config.data.path)[1]) >= shard.world else None


# --- collectives ---------------------------------------------------------------------------------------

def _gather(value: Any) -> list[Any]:
    import torch.distributed as dist

    values: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values


def _agree(work):
    """``work()`` on every rank; if it failed on any, every rank raises the first failure's message."""
    try:
        result, problem = work(), None
    except MlplabError as error:
        result, problem = None, str(error)
    problems = [message for message in _gather(problem) if message]
    if problems:
        raise DataError(problems[0])
    return result


def _all_reduce(values: list[float] | np.ndarray, op: str = "SUM") -> np.ndarray:
    import torch
    import torch.distributed as dist

    tensor = torch.as_tensor(np.asarray(values))
    dist.all_reduce(tensor, getattr(dist.ReduceOp, op))
    return tensor.numpy()


_LOW_BITS = np.int64(0x7FFFFFFFFFFFFFFF)


def _keys(values: np.ndarray) -> np.ndarray:
    """float64 -> int64 with the same order (negative floats' magnitude bits flipped); an involution."""
    bits = values.astype(np.float64).view(np.int64)
    return bits ^ ((bits >> 63) & _LOW_BITS)


def global_median(values: np.ndarray, count: int) -> float:
    """np.median of the values every rank holds (``count`` in all), exactly: the two middle order
    statistics, each found by bisection over the int64 order keys (about 64 all_reduces)."""
    keys = np.sort(_keys(values))
    big = np.iinfo(np.int64).max
    bounds = _all_reduce(np.array([keys[0] if len(keys) else big, -keys[-1] if len(keys) else big]), "MIN")
    wanted = [(count - 1) // 2, count // 2]
    low, high = [int(bounds[0])] * 2, [int(-bounds[1])] * 2
    while low != high:
        middle = [a + (b - a) // 2 for a, b in zip(low, high)]
        below = _all_reduce(np.array([np.searchsorted(keys, np.int64(m), side="right") for m in middle]))
        for i in range(2):
            if low[i] < high[i]:
                low[i], high[i] = (low[i], middle[i]) if below[i] >= wanted[i] + 1 else (middle[i] + 1, high[i])
    keys = np.array(low, dtype=np.int64)
    first, second = (keys ^ ((keys >> 63) & _LOW_BITS)).view(np.float64)  # the key map is its own inverse
    return float(np.mean([first, second]))  # np.median's mean of the two middle values


def fit_preprocessor(table: Table, scale: str, unknown_categories: str, input_features: list[str] | None,
                     impute: str) -> Preprocessor:
    """:meth:`Preprocessor.fit` over the training rows of every rank, ``table`` holding this rank's."""
    raw_names = list(table)
    if input_features:
        input_features = [canonical_input_feature(term) for term in input_features]
        table = derive_input_features(table, input_features)

    def local_summary() -> dict[str, tuple]:
        summary = {}
        for name, column in table.items():
            if is_numeric(column):
                values = column.astype(np.float64, copy=False)
                missing = np.isnan(values)
                present = values[~missing]
                first = int(np.flatnonzero(missing)[0]) if missing.any() else None
                summary[name] = ("numeric", len(present), len(values), float(present.sum()),
                                 float(present.min()) if len(present) else np.inf,
                                 float(present.max()) if len(present) else -np.inf, first)
            else:
                missing = is_missing(column)
                summary[name] = ("text", {str(v) for v in column[~missing].tolist()}, bool(missing.any()))
        return summary

    summaries = _gather(_agree(local_summary))
    features = _agree(lambda: _global_features(summaries, impute))
    for feature in features:  # a median needs the values themselves: bisection, every rank in step
        if feature.get("fill") == "median":
            column = table[feature["name"]].astype(np.float64, copy=False)
            count = sum(summary[feature["name"]][1] for summary in summaries)
            feature["fill"] = global_median(column[~np.isnan(column)], count)
    numeric = [f for f in features if f["kind"] == "numeric"]
    offsets, divisors = _global_scaling(table, numeric, summaries, scale)
    offset: list[float] = []
    divisor: list[float] = []
    for feature in features:
        if feature["kind"] == "numeric":
            offset.append(offsets[feature["name"]])
            divisor.append(divisors[feature["name"]])
        else:
            offset += [0.0] * len(feature["categories"])
            divisor += [1.0] * len(feature["categories"])
    return Preprocessor(features, scale, offset, divisor, unknown_categories, input_features or None,
                        raw_names if input_features else None, impute)


def _global_features(summaries: list[dict[str, tuple]], impute: str) -> list[dict[str, Any]]:
    """The features' kinds, categories and mean fills from every rank's summary (a median is marked)."""
    features: list[dict[str, Any]] = []
    for name in summaries[0]:
        parts = [summary[name] for summary in summaries]
        if len({part[0] for part in parts}) > 1:
            raise DataError(f"column '{name}' holds numbers in some row groups and text in others; "
                            "give it one type (or name it with --categorical)")
        if parts[0][0] == "numeric":
            feature: dict[str, Any] = {"name": name, "kind": "numeric"}
            present, rows = sum(p[1] for p in parts), sum(p[2] for p in parts)
            if impute != "none":
                if present == 0:
                    raise DataError(f"column '{name}' has no values at all; leave it out with --drop {name}")
                feature["fill"] = "median" if impute == "median" else sum(p[3] for p in parts) / present
            elif present < rows:
                raise _missing_error(name, next(p[6] for p in parts if p[6] is not None))
            features.append(feature)
        else:
            missing = any(p[2] for p in parts)
            if missing and impute == "none":
                raise _missing_error(name, 0)
            categories = sorted(set().union(*(p[1] for p in parts)) | ({MISSING} if missing else set()))
            features.append({"name": name, "kind": "categorical", "categories": categories})
    return features


def _global_scaling(table: Table, numeric: list[dict[str, Any]], summaries: list[dict[str, tuple]],
                    scale: str) -> tuple[dict[str, float], dict[str, float]]:
    """Each numeric column's (offset, divisor) once its missing values are filled, as one process
    computes it: mean and root-mean-square deviation, or min and range; a constant column divides by 1."""
    offsets, divisors = {}, {}
    if scale == "none" or not numeric:
        return {f["name"]: 0.0 for f in numeric}, {f["name"]: 1.0 for f in numeric}
    names = [f["name"] for f in numeric]
    parts = {name: [summary[name] for summary in summaries] for name in names}
    filled = {}
    for feature in numeric:
        column = table[feature["name"]].astype(np.float64, copy=False)
        filled[feature["name"]] = np.where(np.isnan(column), feature["fill"], column) if "fill" in feature \
            else column
    rows = {name: sum(p[2] for p in parts[name]) for name in names}
    if scale == "standard":
        means = _all_reduce([filled[name].sum() for name in names]) / np.array([rows[n] for n in names])
        squares = _all_reduce([((filled[name] - mean) ** 2).sum() for name, mean in zip(names, means)])
        for name, mean, square in zip(names, means, squares):
            spread = float(np.sqrt(square / rows[name]))
            offsets[name], divisors[name] = float(mean), spread if spread > 0 else 1.0
    else:  # minmax
        lows = _all_reduce([filled[n].min() if len(filled[n]) else np.inf for n in names], "MIN")
        highs = _all_reduce([filled[n].max() if len(filled[n]) else -np.inf for n in names], "MAX")
        for name, low, high in zip(names, lows, highs):
            spread = float(high) - float(low)
            offsets[name], divisors[name] = float(low), spread if spread > 0 else 1.0
    return offsets, divisors


# --- reading and splitting -----------------------------------------------------------------------------

def _mine(ids: np.ndarray, starts: np.ndarray, groups: list[int]) -> np.ndarray:
    """Positions, in this rank's table (its row groups one after another), of the sorted file row numbers
    ``ids`` that lie in its row groups."""
    positions, offset = [], 0
    for group in groups:
        low, high = np.searchsorted(ids, [starts[group], starts[group + 1]])
        positions.append(ids[low:high] - starts[group] + offset)
        offset += int(starts[group + 1] - starts[group])
    return np.concatenate(positions).astype(np.int64) if positions else np.zeros(0, dtype=np.int64)


def _row_numbers(positions: np.ndarray, starts: np.ndarray, groups: list[int]) -> np.ndarray:
    """The file row numbers of this rank's table positions (the inverse of :func:`_mine`)."""
    sizes = np.array([starts[g + 1] - starts[g] for g in groups])
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    which = np.searchsorted(offsets, positions, side="right") - 1
    return positions - offsets[which] + starts[np.array(groups)[which]]


def _splits(config: Config, y_all: np.ndarray) -> dict[str, Any]:
    """What one process computes from the target column: rows kept, test/val/train row numbers (sorted),
    task, target encoder. Same functions, same seeds as :func:`mlplab.data.load_dataset`."""
    from .data import drop_missing_target, split_indices
    from .preprocess import TargetEncoder, infer_task, task_note

    data, path, target = config.data, config.data.path, config.data.target or "y"
    kept = np.flatnonzero(~is_missing(y_all))
    _, y, dropped = drop_missing_target({}, y_all, path, target)
    if data.test_path:
        test, train = np.zeros(0, dtype=np.int64), kept
        y_train = y
    else:
        stratify = None if infer_task(y, config.model.task) == "regression" else y
        keep, held = split_indices(len(y), data.test_fraction, stratify, np.random.RandomState([config.seed, 1]))
        if len(held) == 0 or len(keep) == 0:
            raise DataError(f"{path}: {len(y)} rows are too few to split off a test set "
                            f"(test_fraction {data.test_fraction}); add rows or give a test file")
        test, train, y_train = kept[held], kept[keep], y[keep]
    task = infer_task(y_train, config.model.task)
    encoder = TargetEncoder.fit(y_train, task, standardise=data.scale_target)
    val = np.zeros(0, dtype=np.int64)
    if data.val_fraction > 0:
        keep, held = split_indices(len(y_train), data.val_fraction, None if task == "regression" else y_train,
                                   np.random.RandomState([config.seed, 2]))
        if len(held) == 0 or len(keep) == 0:
            raise DataError(f"val_fraction {data.val_fraction} leaves no validation or no training rows")
        val, train = train[held], train[keep]
    note = task_note(y_train, config.model.task, task)
    return {"train": train, "val": val, "test": test, "task": task, "target": encoder, "dropped": dropped,
            "note": note, "y": y, "kept": kept}


def _columns(config: Config, names: list[str]) -> list[str]:
    """The feature columns to read, checked as :func:`mlplab.data._read_file` checks them (identifiers
    are found later, from every rank's values)."""
    from .data import check_column_options, select_columns

    data, target = config.data, config.data.target or "y"
    check_column_options(data, list(names), data.path, target)
    wanted = data.features or [name for name in names if name != target and name not in (data.drop or ())]
    return list(select_columns({name: name for name in names}, target, wanted, data.path)[0])


def _identifiers(table: Table, config: Config) -> list[str]:
    """Text columns whose every value differs over the whole file (:func:`mlplab.data.is_identifier`)."""
    if config.data.features:
        return []
    text = [name for name, column in table.items()
            if column.dtype.kind == "O" and name not in (config.data.categorical or ())]
    distinct = _gather({name: (len(table[name]), len(set(table[name].tolist()))) for name in text})
    candidates = [name for name in text if all(d[name][0] == d[name][1] for d in distinct)
                  and sum(d[name][0] for d in distinct) > 20]
    if not candidates:
        return []
    sets = _gather({name: set(table[name].tolist()) for name in candidates})
    return [name for name in candidates
            if len(set().union(*(s[name] for s in sets))) == sum(d[name][0] for d in distinct)]


def load_shard(config: Config, shard: Shard) -> Any:
    """This rank's :class:`~mlplab.data.Dataset`: its training rows, every validation row, and (rank 0)
    every test row, encoded by the preprocessing one process would fit on all training rows."""
    import torch.distributed as dist

    from .data import Dataset, _read_file, drop_missing_target, file_digest

    data, rank, world = config.data, shard.rank, shard.world
    path, target, name = data.path, data.target or "y", Path(data.path).name
    names, sizes = parquet_layout(path)
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    groups = list(range(rank, len(sizes), world))
    options = {"encoding": data.encoding, "text_columns": data.categorical or (), "numeric_columns": data.numeric or ()}

    def read() -> tuple[Table, dict[str, Any]]:
        wanted = _columns(config, names)
        y_all = read_table(path, columns=[target], **options)[target]
        return read_table(path, row_groups=groups, columns=wanted, **options), _splits(config, y_all)

    table, plan = _agree(read)
    identifiers = _identifiers(table, config)
    for column in identifiers:
        del table[column]
    local = {split: _mine(plan[split], starts, groups) for split in ("train", "val", "test")}
    rows = {split: _row_numbers(local[split], starts, groups) for split in local}
    targets = {split: plan["y"][np.searchsorted(plan["kept"], rows[split])] for split in local}
    train_table = {column: values[local["train"]] for column, values in table.items()}
    preprocessor = fit_preprocessor(train_table, data.scale, data.unknown_categories, data.input_features,
                                    data.impute)
    dtype, encoder = np.dtype(config.model.dtype), plan["target"]

    def encode(columns: Table, split: str) -> np.ndarray:
        matrix = preprocessor.transform(columns, dtype, f"{name} ({split} rows)")
        check_trainable(matrix, preprocessor.encoded_names, f"{name} ({split} rows)")
        return matrix

    def encode_all() -> dict[str, Any]:
        labels = {"train": "training", "val": "validation", "test": "test"}
        if plan["task"] == "regression":
            for split, label in labels.items():
                check_trainable(targets[split].astype(np.float64), ["target"], f"{name} ({label} rows)", dtype)
        parts: dict[str, Any] = {"train": (encode(train_table, "training"), encoder.encode(targets["train"]))}
        for split in ("val", "test"):
            columns = {column: values[local[split]] for column, values in table.items()}
            parts[split] = (rows[split], encode(columns, labels[split]), encoder.encode(targets[split]))
        if data.test_path and rank == 0:  # a separate test file: rank 0 alone reads it, whole
            features, y_test = _read_file(data, data.test_path, target, list(train_table))
            features, y_test, parts["dropped_test"] = drop_missing_target(features, y_test, data.test_path, target)
            parts["test_file"] = (encode(features, "test"), encoder.encode(y_test))
        return parts

    parts = _agree(encode_all)
    table = train_table = None  # the raw columns are encoded now: free them
    x_val, y_val = _joined(_gather(parts["val"]))
    test = [None] * world if rank == 0 else None
    dist.gather_object(parts["test"], test, dst=0)
    x_test, y_test = parts.get("test_file") or (_joined(test) if rank == 0 else (None, None))
    counts = _gather((len(parts["train"][1]), sum(sizes[g] for g in groups)))
    shard.train_rows = [count for count, _ in counts]
    source: dict[str, Any] = {"name": name, "path": str(path), "target": target, "dropped_rows": plan["dropped"]}
    if rank == 0:
        source["sha256"] = file_digest(path)
    if identifiers:
        source["identifiers"] = identifiers
    if data.test_path:
        source.update(test_path=str(data.test_path), dropped_test_rows=parts.get("dropped_test", 0))
    if plan["note"]:
        source["task_note"] = plan["note"]
    source["shard"] = {"ranks": world, "row_groups": len(sizes), "rows_read": [read for _, read in counts],
                       "train_rows": shard.train_rows, "test_rows": 0 if x_test is None else len(x_test)}
    has_val = len(plan["val"]) > 0
    return Dataset(x_train=parts["train"][0], y_train=parts["train"][1], x_test=x_test, y_test=y_test,
                   x_val=x_val if has_val else None, y_val=y_val if has_val else None, task=plan["task"],
                   preprocessor=preprocessor, target=encoder, source=source)


def _joined(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Every rank's rows of a split, put back in file order (the order one process holds them in)."""
    rows = np.concatenate([part[0] for part in parts])
    order = np.argsort(rows, kind="stable")
    return np.concatenate([part[1] for part in parts])[order], np.concatenate([part[2] for part in parts])[order]
