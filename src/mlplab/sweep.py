"""A sweep: one base config and a grid of settings, every combination trained at once, the results compared.

A grid maps dotted setting names to the values to try::

    {"training.learning_rate": [0.01, 0.03, 0.1], "seed": range(32), "model.hidden_sizes": [[5], [8], [16]]}

Each combination is an ordinary :class:`~mlplab.config.Config`, trained exactly as ``mlplab train`` would train
it (the seed draws its own data split, initial weights and batch order), but members that share a shape are
trained together as one batched computation (``batched.py``). Different hidden sizes form separate batches.

The sweep folder holds ``results.csv`` and ``results.json`` (one row per model: its settings, final train /
validation / test metrics, best epoch, why it stopped), ``curves.npz`` (every model's per-epoch curves),
``sweep.toml`` (the base config with its ``[sweep]`` table: ``mlplab sweep --config`` repeats the sweep),
``sweep.png`` (the chosen metric against each swept setting) and ``best/``, the best model's run folder,
which ``mlplab predict`` and every other command read like any run.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Config, ConfigError, MlplabError, to_toml
from .run import _finite  # JSON has no NaN: one writer of non-finite numbers as null

__all__ = ["SweepResult", "expand_grid", "load_sweep_config", "parse_grid_option", "run_sweep"]

LOWER_IS_BETTER = ("loss", "mse", "mae")
SWEEP_MARKER = "results.json"


# --- the grid ----------------------------------------------------------------------------------------

def _scalar(text: str) -> Any:
    text = text.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _values(key: str, text: str) -> list[Any]:
    """One --grid option's values. ``a..b`` is every whole number from a to b inclusive; list-valued
    settings (hidden_sizes) separate alternatives by ``;`` and a value's items by ``,``."""
    if key.endswith("hidden_sizes"):
        return [[_scalar(item) for item in part.split(",") if item.strip()] for part in text.split(";")
                if part.strip()]
    values: list[Any] = []
    for part in text.replace(";", ",").split(","):
        if not part.strip():
            continue
        if ".." in part:
            low, _, high = part.partition("..")
            start, stop = _scalar(low), _scalar(high)
            if not isinstance(start, int) or not isinstance(stop, int) or stop < start:
                raise ConfigError(key, f"range {part.strip()!r} must be two whole numbers, low..high")
            values.extend(range(start, stop + 1))
        else:
            values.append(_scalar(part))
    return values


def parse_grid_option(option: str) -> tuple[str, list[Any]]:
    """``"training.learning_rate=0.01,0.03"`` -> ``("training.learning_rate", [0.01, 0.03])``."""
    key, equals, text = option.partition("=")
    key = key.strip()
    if not equals or not key:
        raise MlplabError(f"--grid {option!r} must be KEY=VALUES, e.g. training.learning_rate=0.01,0.03")
    values = _values(key, text)
    if not values:
        raise ConfigError(key, "has no values in --grid; give e.g. KEY=1,2,3 or KEY=0..9")
    return key, values


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def load_sweep_config(path: str | Path) -> tuple[Config, dict[str, list[Any]], dict[str, Any]]:
    """Read a TOML config with an optional ``[sweep]`` table: ``(base config, grid, options)``.

    ``[sweep.grid]`` maps setting names to lists of values (or the ``--grid`` text, such as ``"0..31"``);
    other keys of ``[sweep]`` are options (``metric``)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        with open(path, "rb") as handle:
            values = tomllib.load(handle)
    except FileNotFoundError:
        raise MlplabError(f"config file {str(path)!r} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise MlplabError(f"config file {str(path)!r} is not valid TOML: {error}") from None
    table = values.pop("sweep", {})
    if not isinstance(table, dict):
        raise ConfigError("sweep", "must be a table: [sweep] with a [sweep.grid] of settings")
    grid: dict[str, list[Any]] = {}
    for key, value in _flatten(table.pop("grid", {})).items():
        if isinstance(value, str):
            grid[key] = _values(key, value)
        elif isinstance(value, list) and value:
            grid[key] = value
        else:
            raise ConfigError(f"sweep.grid.{key}", f"must be a non-empty list of values, got {value!r}")
    unknown = set(table) - {"metric"}
    if unknown:
        raise ConfigError(f"sweep.{sorted(unknown)[0]}", "is not a sweep option; known: grid, metric")
    return Config.from_dict(values), grid, table


def expand_grid(base: Config, grid: dict[str, list[Any]]) -> list[tuple[dict[str, Any], Config]]:
    """Every combination as ``(settings, config)``, in grid order (the last key varies fastest); each
    config validated, so a bad value is reported naming its setting before anything trains."""
    combinations = []
    keys = list(grid)
    for values in itertools.product(*(grid[key] for key in keys)):
        config = Config.from_dict(base.to_dict())
        settings = dict(zip(keys, values))
        for key, value in settings.items():
            config.set(key, value)
        try:
            config.validate()
        except ConfigError as error:
            if error.key not in settings:
                raise
            # name the grid value, not the command-line flag: the base config itself was fine
            raise ConfigError(f"grid value {error.key}={settings[error.key]}", error.problem) from None
        combinations.append((settings, config))
    return combinations


# --- running -----------------------------------------------------------------------------------------

@dataclass
class SweepResult:
    """What :func:`sweep` returns: one row per model (grid order), the chosen metric and the best row."""

    rows: list[dict[str, Any]]
    metric: str
    best: int
    path: Path | None
    seconds: float
    curves: dict[str, Any]

    def top(self, n: int = 5) -> list[dict[str, Any]]:
        """The ``n`` best rows by the metric (models with no value last)."""
        return sorted(self.rows, key=lambda row: _rank(row.get(self.metric), self.metric))[:n]


def _rank(value: Any, metric: str) -> float:
    if value is None or not math.isfinite(value):
        return math.inf
    return value if metric.rsplit("_", 1)[-1] in LOWER_IS_BETTER or metric.endswith("loss") else -value


def resolve_metric(metric: str | None, has_val: bool) -> str:
    """``loss`` / ``accuracy`` / ... on the validation split (the test split when there is none), or a
    full column name such as ``test_f1``."""
    split = "val" if has_val else "test"
    if metric is None:
        return f"{split}_loss"
    return metric if metric.split("_", 1)[0] in ("train", "val", "test") else f"{split}_{metric}"


def run_sweep(base: Config, grid: dict[str, list[Any]], *, metric: str | None = None, out: str | Path | None = None,
          save: bool = True, force: bool = False, save_best: bool = True) -> SweepResult:
    """Train every combination of ``grid`` over ``base``, batched, and (unless ``save=False``) write a sweep
    folder at ``out`` (default ``sweeps/<data>-<time>``).

    Examples
    --------
    >>> import mlplab
    >>> base = mlplab.Config.from_dict({"training": {"epochs": 200}})
    >>> result = mlplab.run_sweep(base, {"training.learning_rate": [0.03, 0.3], "seed": [0, 1]}, save=False)
    >>> len(result.rows), result.metric
    (4, 'test_loss')
    >>> result.rows[result.best]["training.learning_rate"]
    0.3
    """
    import torch

    from . import batched
    from .data import load_dataset
    from .run import _build_module, resolve_device
    from .training import score_split

    started = time.perf_counter()
    combinations = expand_grid(base, grid)
    for _, config in combinations:
        batched.check_batchable(config)
    folder = _sweep_folder(out, base, force) if save else None
    datasets: dict[str, Any] = {}
    members: list[batched.Member] = []
    with torch.random.fork_rng(devices=[]):  # the user's global RNG stays as it was
        for _, config in combinations:
            data_key = json.dumps([config.data.__dict__, config.seed, config.model.task, config.model.dtype],
                                  default=str, sort_keys=True)
            if data_key not in datasets:
                datasets[data_key] = load_dataset(config)
            dataset = datasets[data_key]
            torch.manual_seed(config.seed)  # as mlplab train: the seed draws the initial weights
            members.append(batched.Member(config, dataset, _build_module(config, dataset)))
    groups: dict[Any, list[int]] = {}
    for index, member in enumerate(members):
        groups.setdefault(batched.group_key(member.config, member.dataset), []).append(index)
    results: list[Any] = [None] * len(members)
    for indices in groups.values():
        device = resolve_device(members[indices[0]].config.training.device)
        for index, result in zip(indices, batched.train_batched([members[i] for i in indices], device)):
            results[index] = result
    has_val = members[0].dataset.x_val is not None
    metric = resolve_metric(metric, has_val)
    rows = []
    for index, ((settings, _), member, result) in enumerate(zip(combinations, members, results)):
        member.module.load_state_dict(result.state_dict)
        row: dict[str, Any] = {"model": index, **settings, "epochs": result.epochs,
                               "best_epoch": result.best_epoch or _best_epoch(result.history)}
        dataset, n_classes = member.dataset, len(member.dataset.classes) if member.dataset.classes else None
        for split in ("train", "val", "test"):
            x = getattr(dataset, f"x_{split}")
            if x is not None and not result.diverged:
                tensors = [torch.from_numpy(a) for a in (x, getattr(dataset, f"y_{split}"))]
                if tensors[1].is_floating_point():
                    tensors[1] = tensors[1].to(tensors[0].dtype)
                scores = score_split(member.module.eval(), *tensors, dataset.task, n_classes)
                row.update({f"{split}_{name}": value for name, value in scores.items()})
        row["stop_reason"] = result.stop_reason
        rows.append(row)
    if metric not in {key for row in rows for key in row}:
        known = sorted({key for row in rows for key in row if key.split("_", 1)[0] in ("train", "val", "test")})
        raise ConfigError("sweep.metric", f"{metric} is not a result column; known: {', '.join(known)}")
    best = min(range(len(rows)), key=lambda i: _rank(rows[i].get(metric), metric))
    curves = {f"{name}": [r.history.get(name) for r in results] for name in results[0].history}
    outcome = SweepResult(rows, metric, best, folder, time.perf_counter() - started, curves)
    if folder is not None:
        _write_folder(folder, outcome, base, grid, combinations[best][1], save_best)
    return outcome


def _best_epoch(history: dict[str, Any]) -> int | None:
    losses = history.get("val_loss", history.get("test_loss"))
    if losses is None or not len(losses):
        return None
    import numpy as np

    finite = np.where(np.isfinite(losses), losses, np.inf)
    return int(np.argmin(finite)) + 1


# --- the sweep folder --------------------------------------------------------------------------------

def _sweep_folder(out: str | Path | None, base: Config, force: bool) -> Path:
    if out is None:
        name = Path(base.data.path).stem if base.data.path else base.data.dataset
        folder = Path("sweeps") / f"{name}-{dt.datetime.now():%Y%m%d-%H%M%S}"
        number = 1
        while folder.exists():
            number += 1
            folder = folder.with_name(f"{folder.name.rsplit('~', 1)[0]}~{number}")
        return folder
    folder = Path(out)
    if folder.exists():
        if not folder.is_dir():
            raise MlplabError(f"--out {folder} is a file; give a folder for the sweep")
        if any(folder.iterdir()):
            if not (folder / SWEEP_MARKER).is_file():
                raise MlplabError(f"--out {folder} is a folder mlplab did not write; choose another")
            if not force:
                raise MlplabError(f"{folder} already holds a sweep; choose another --out, or --force to replace it")
    return folder


def _write_folder(folder: Path, result: SweepResult, base: Config, grid: dict[str, list[Any]], best: Config,
                  save_best: bool) -> None:
    """Everything is written into a fresh folder beside ``folder`` and moved into place at the end, so an
    interrupted sweep leaves nothing half-written (and a replaced sweep is removed only then)."""
    import numpy as np

    from .run import train

    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        columns = list(dict.fromkeys(key for row in result.rows for key in row))
        _write_csv(staging / "results.csv", columns, result.rows)
        summary = {"mlplab_sweep": 1, "metric": result.metric, "best": result.best, "seconds": round(result.seconds, 3),
                   "grid": grid, "rows": _finite(result.rows)}
        (staging / SWEEP_MARKER).write_text(json.dumps(summary, indent=1, default=str))
        arrays = {}
        for name, values in result.curves.items():
            longest = max((len(v) for v in values if v is not None), default=0)
            matrix = np.full((len(values), longest), np.nan)
            for i, curve in enumerate(values):
                if curve is not None:
                    matrix[i, :len(curve)] = curve
            arrays[name] = matrix
        np.savez_compressed(staging / "curves.npz", **arrays)
        (staging / "sweep.toml").write_text(sweep_toml(base, grid, result.metric))
        try:
            from .plots import require_matplotlib

            require_matplotlib()
            plot_sweep(result, grid).savefig(staging / "sweep.png", dpi=100)
        except MlplabError:  # no matplotlib: the figure is optional
            pass
        if save_best:
            train(best, out=staging / "best", force=True)
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old")
            folder.rename(old)
            staging.rename(folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(folder)
        result.path = folder
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    import csv

    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([" ".join(map(str, v)) if isinstance(v, list) else ("" if v is None else v)
                             for v in (row.get(c) for c in columns)])


def sweep_toml(base: Config, grid: dict[str, list[Any]], metric: str) -> str:
    """The base config with a ``[sweep]`` table: ``mlplab sweep --config`` on it repeats the sweep."""
    from .config import _toml_value

    lines = [to_toml(base), "[sweep]", f"metric = {_toml_value(metric)}", "", "[sweep.grid]"]
    lines += [f"{json.dumps(key)} = {_toml_value(values)}" for key, values in grid.items()]
    return "\n".join(lines) + "\n"


def plot_sweep(result: SweepResult, grid: dict[str, list[Any]]) -> Any:
    """The metric against each swept setting: one panel per setting, every model a dot, the mean a line."""
    from .plots import require_matplotlib

    plt = require_matplotlib()
    keys = list(grid)
    figure, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys):
        labels = [str(value) for value in grid[key]]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in grid[key])
        positions = [float(v) for v in grid[key]] if numeric else list(range(len(labels)))
        spread = numeric and min(positions) > 0 and max(positions) / min(positions) >= 20
        means = []
        for position, value in zip(positions, grid[key]):
            scores = [row.get(result.metric) for row in result.rows if row.get(key) == value]
            scores = [s for s in scores if s is not None and math.isfinite(s)]
            ax.scatter([position] * len(scores), scores, s=12, alpha=0.5, color="#0072B2")
            means.append(sum(scores) / len(scores) if scores else math.nan)
        ax.plot(positions, means, color="#E69F00", marker="o", label="mean")
        if spread:
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(positions, labels)
        ax.set_xlabel(key)
        ax.set_ylabel(result.metric)
    best = result.rows[result.best]
    score = best.get(result.metric)
    figure.suptitle(f"{len(result.rows)} models; best {result.metric} {score:.4g} (model {best['model']})")
    figure.tight_layout()
    return figure
