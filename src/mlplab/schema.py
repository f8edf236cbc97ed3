"""The schema of a checkpoint's description (``meta``, also written as ``run.json``), checked before use.

A checkpoint's checksum catches a damaged file; this catches a description that is well-formed JSON but
cannot be right: sizes that disagree with the weight tensors, an unknown task, two classes for five
outputs, a scaling vector one short, a dtype that is not float32/float64. It runs before any network
is built, so a 72 KB file that claims two 28000-unit layers is refused at once instead of allocating
gigabytes, and a short scaling vector cannot give a silently wrong prediction. This module imports
no torch: ``mlplab runs`` and ``show`` use it on ``run.json``.
"""

from __future__ import annotations

import math
from typing import Any

from .config import MlplabError

__all__ = ["CheckpointError", "check_meta", "check_weights"]

TASKS = ("binary", "multiclass", "regression")
OUTPUTS = {"binary": "sigmoid", "multiclass": "softmax", "regression": "identity"}
DTYPES = ("float32", "float64")
SCALES = ("none", "standard", "minmax")


class CheckpointError(MlplabError):
    """A file is missing, not a checkpoint, from a newer mlplab, truncated, corrupt or inconsistent."""


def _whole(value: Any, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _label(value: Any) -> bool:
    return isinstance(value, (str, bool)) or _number(value)


class _Checker:
    def __init__(self, where: str):
        self.where = where

    def fail(self, problem: str) -> CheckpointError:
        return CheckpointError(f"{self.where} has an invalid description: {problem}")

    def require(self, condition: bool, problem: str) -> None:
        if not condition:
            raise self.fail(problem)


def check_meta(meta: Any, where: str) -> list[int]:
    """Check a checkpoint description; returns the layer sizes ``[n_inputs, *hidden, n_outputs]``.
    Raises :class:`CheckpointError` naming the first problem."""
    check = _Checker(where)
    check.require(isinstance(meta, dict), f"expected a JSON object, got {type(meta).__name__}")
    task = meta.get("task")
    check.require(task in TASKS, f"task must be one of {', '.join(TASKS)}, got {task!r}")
    architecture = meta.get("architecture")
    check.require(isinstance(architecture, dict), "the architecture is missing")
    n_inputs, hidden, n_outputs = (architecture.get(key) for key in ("n_inputs", "hidden_sizes", "n_outputs"))
    check.require(_whole(n_inputs, 1), f"architecture.n_inputs must be a whole number >= 1, got {n_inputs!r}")
    check.require(isinstance(hidden, list) and all(_whole(size, 1) for size in hidden),
                  f"architecture.hidden_sizes must be a list of whole numbers >= 1, got {hidden!r}")
    check.require(_whole(n_outputs, 1), f"architecture.n_outputs must be a whole number >= 1, got {n_outputs!r}")
    activation = architecture.get("activation")
    check.require(isinstance(activation, str), f"architecture.activation must be a name, got {activation!r}")
    dtype = architecture.get("dtype", "float32")
    check.require(dtype in DTYPES, f"architecture.dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    dropout = architecture.get("dropout", 0.0)
    check.require(_number(dropout) and 0 <= dropout < 1, f"architecture.dropout must be in [0, 1), got {dropout!r}")
    classes = meta.get("classes")
    if task == "regression":
        check.require(classes is None, "a regression model has no classes")
        check.require(n_outputs == 1, f"a regression model has 1 output, not {n_outputs}")
    else:
        check.require(isinstance(classes, list) and all(_label(label) for label in classes),
                      f"classes must be a list of labels, got {classes!r}")
        check.require(len({repr(label) for label in classes}) == len(classes), "classes has a label twice")
        if task == "binary":
            check.require(len(classes) == 2, f"task binary needs 2 classes, got {len(classes)}")
            check.require(n_outputs == 1, f"a binary model has 1 output, not {n_outputs}")
        else:
            check.require(n_outputs >= 2 and len(classes) == n_outputs,
                          f"a multiclass model has one output per class (at least 2): {n_outputs} output(s), "
                          f"{len(classes)} classes")
    output = architecture.get("output", OUTPUTS[task])
    check.require(output == OUTPUTS[task], f"architecture.output {output!r} does not fit task {task}")
    _check_preprocessor(check, meta.get("preprocessor"), n_inputs)
    for key in ("config", "data"):
        check.require(isinstance(meta.get(key, {}), dict), f"{key} must be a JSON object")
    epoch = meta.get("epoch", 0)
    check.require(_whole(epoch), f"epoch must be a whole number >= 0, got {epoch!r}")
    check.require(isinstance(meta.get("metrics") or {}, dict), "metrics must be a JSON object")
    return [n_inputs, *hidden, n_outputs]


def _check_preprocessor(check: _Checker, values: Any, n_inputs: int) -> None:
    check.require(isinstance(values, dict), "the preprocessor is missing")
    features = values.get("features")
    check.require(isinstance(features, list) and features, "preprocessor.features must be a non-empty list")
    width, names = 0, set()
    for feature in features:
        check.require(isinstance(feature, dict) and isinstance(feature.get("name"), str),
                      f"each preprocessor feature needs a name, got {feature!r}")
        check.require(feature["name"] not in names, f"feature {feature['name']!r} is listed twice")
        names.add(feature["name"])
        kind = feature.get("kind")
        if kind == "numeric":
            width += 1
        else:
            categories = feature.get("categories")
            check.require(kind == "categorical" and isinstance(categories, list) and categories
                          and all(map(_label, categories)) and len(set(map(repr, categories))) == len(categories),
                          f"feature {feature['name']!r} must be numeric, or categorical with distinct categories")
            width += len(categories)
    check.require(width == n_inputs, f"the preprocessor encodes {width} input(s) but the network takes {n_inputs}")
    scale = values.get("scale", "none")
    check.require(scale in SCALES, f"preprocessor.scale must be one of {', '.join(SCALES)}, got {scale!r}")
    for key in ("offset", "divisor"):
        vector = values.get(key)
        check.require(isinstance(vector, list) and len(vector) == n_inputs and all(map(_number, vector)),
                      f"preprocessor.{key} must hold {n_inputs} finite numbers, got "
                      f"{len(vector) if isinstance(vector, list) else repr(vector)}")
    check.require(all(value != 0 for value in values["divisor"]), "preprocessor.divisor holds a zero")
    for key in ("input_features", "raw_names"):  # computed inputs (x1^2, ...) from these raw columns
        listed = values.get(key)
        names_ok = isinstance(listed, list) and listed and all(isinstance(v, str) for v in listed)
        check.require(listed is None or names_ok, f"preprocessor.{key} must be a list of names, got {listed!r}")
    check.require((values.get("input_features") is None) == (values.get("raw_names") is None),
                  "preprocessor.input_features and raw_names go together")
    unknown = values.get("unknown_categories", "error")
    check.require(unknown in ("error", "ignore"), f"preprocessor.unknown_categories must be error or ignore, got "
                                                  f"{unknown!r}")


def check_weights(sizes: list[int], dtype: str, weights: dict[str, tuple[tuple[int, ...], str]],
                  where: str) -> None:
    """The weights (name -> (shape, dtype)) must be exactly ``linear_1.weight`` ... for ``sizes``."""
    check = _Checker(where)
    expected = {}
    for number, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:]), start=1):
        expected[f"linear_{number}.weight"] = (fan_out, fan_in)
        expected[f"linear_{number}.bias"] = (fan_out,)
    missing = [name for name in expected if name not in weights]
    extra = [name for name in weights if name not in expected]
    check.require(not missing and not extra,
                  f"the weights do not fit the architecture {'-'.join(map(str, sizes))} "
                  f"(missing {', '.join(missing) or 'none'}; unexpected {', '.join(extra) or 'none'})")
    for name, shape in expected.items():
        got, got_dtype = weights[name]
        check.require(tuple(got) == shape, f"{name} has shape {tuple(got)} but the architecture "
                                           f"{'-'.join(map(str, sizes))} needs {shape}")
        check.require(got_dtype == dtype, f"{name} is {got_dtype} but the description says {dtype}")


def load_run_json(folder: Any) -> dict[str, Any]:
    """A run folder's ``run.json`` (its description as readable JSON), read safely and checked against
    the schema; for listing and showing runs without loading torch."""
    from pathlib import Path

    from .runfolder import read_json, readable, resolve

    path = Path(folder) / "run.json"
    if not readable(path):
        raise CheckpointError(f"{folder} is not a run folder (no run.json)")
    meta = read_json(resolve(path), "run description")
    check_meta(meta, str(path))
    return meta


def progress(meta: dict[str, Any]) -> str:
    """'completed', or how far an incomplete run got: 'incomplete: epoch 150 of 2000'."""
    if meta.get("complete", True):
        return "completed"
    total = (meta.get("config") or {}).get("training", {}).get("epochs", "?")
    return f"incomplete: epoch {meta.get('epoch')} of {total}"
