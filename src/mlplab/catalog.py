"""The runs in a folder, oldest first, as ``mlplab runs`` lists them, and a run found again by the name
that list prints (``mlplab show NAME``, ``mlplab predict NAME``, ...). Reads only the small JSON files
of each run: no torch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .config import MlplabError

__all__ = ["RunSummary", "find_run", "list_runs"]

RUNS_FOLDER = "runs"  # where `mlplab train` puts a run without --out


@dataclass
class RunSummary:
    """One line of ``mlplab runs``."""

    path: Path
    created: datetime | None
    data: str
    architecture: str
    epochs: int
    best_val: float | None
    test: float | None
    headline: str  # "accuracy" or "r2"
    train_seconds: float
    state: str = ""  # "incomplete" for a run that stopped early (a signal, a crash), else ""


def list_runs(folder: str | Path = RUNS_FOLDER,
              skipped: Callable[[Path, MlplabError], None] | None = None) -> list[RunSummary]:
    """Every run in ``folder`` (sub-folders holding a run.json), sorted by the time each was created.
    A folder whose run.json is unreadable or damaged is left out and passed to ``skipped``, so one bad
    folder neither hides the others nor goes unmentioned."""
    from .schema import load_run_json

    folder = Path(folder)
    if not folder.is_dir():
        raise MlplabError(f"{folder} is not a folder of runs")
    runs = []
    for meta_path in folder.glob("*/run.json"):
        try:
            runs.append(_summary(meta_path.parent, load_run_json(meta_path.parent)))
        except MlplabError as error:
            if skipped is not None:
                skipped(meta_path.parent, error)
        except (KeyError, TypeError, ValueError) as error:
            if skipped is not None:
                skipped(meta_path.parent, MlplabError(f"{meta_path} is damaged ({error})"))
    return sorted(runs, key=lambda run: (run.created is None, run.created or datetime.min, run.path.name))


def _summary(folder: Path, meta: dict[str, Any]) -> RunSummary:
    architecture = meta["architecture"]
    headline = "accuracy" if meta["task"] != "regression" else "r2"
    return RunSummary(
        path=folder, created=_created(meta.get("created")), data=(meta.get("data") or {}).get("name", "?"),
        architecture="-".join(map(str, [architecture["n_inputs"], *architecture["hidden_sizes"],
                                        architecture["n_outputs"]])),
        epochs=int(meta["epoch"]), best_val=_best_val(folder / "history.json", headline),
        test=((meta.get("metrics") or {}).get("test") or {}).get(headline), headline=headline,
        train_seconds=float(meta.get("train_seconds") or 0.0),
        state="" if meta.get("complete", True) else "incomplete")


def _created(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text).astimezone() if text else None  # shown in local time
    except ValueError:
        return None


def _best_val(history_path: Path, headline: str) -> float | None:
    from .runfolder import read_json, resolve

    try:
        history = read_json(resolve(history_path), "history file") if history_path.exists() else None
    except MlplabError:
        return None
    if not isinstance(history, list):
        return None
    values = [record[f"val_{headline}"] for record in history
              if isinstance(record, dict) and isinstance(record.get(f"val_{headline}"), (int, float))]
    return max(values) if values else None


def find_run(name: str | Path, folder: str | Path = RUNS_FOLDER) -> Path:
    """The run ``name`` names: a path to a run folder or checkpoint, else a run of that name in
    ``folder`` (what ``mlplab runs`` prints). An unknown name comes back unchanged, for the caller's
    own "does not exist"."""
    path = Path(name)
    if path.exists() or path.is_absolute():
        return path
    candidate = Path(folder) / path
    return candidate if candidate.exists() else path
