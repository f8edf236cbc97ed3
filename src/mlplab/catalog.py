"""The runs in a folder, oldest first, as ``mlplab runs`` lists them, and a run found again by the name
that list prints (``mlplab show NAME``, ``mlplab predict NAME``, ...). Reads only the small JSON files
of each run: no torch."""

from __future__ import annotations

import json
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


def list_runs(folder: str | Path = RUNS_FOLDER) -> list[RunSummary]:
    """Every run in ``folder`` (sub-folders holding a run.json), sorted by the time each was created."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MlplabError(f"{folder} is not a folder of runs")
    runs = []
    for meta_path in folder.glob("*/run.json"):
        try:
            meta = json.loads(meta_path.read_text())
            runs.append(_summary(meta_path.parent, meta))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a folder being written, or not mlplab's: not a run to list
    return sorted(runs, key=lambda run: (run.created is None, run.created or datetime.min, run.path.name))


def _summary(folder: Path, meta: dict[str, Any]) -> RunSummary:
    architecture = meta["architecture"]
    headline = "accuracy" if meta["task"] != "regression" else "r2"
    return RunSummary(
        path=folder, created=_created(meta.get("created")), data=meta["data"]["name"],
        architecture="-".join(map(str, [architecture["n_inputs"], *architecture["hidden_sizes"],
                                        architecture["n_outputs"]])),
        epochs=int(meta["epoch"]), best_val=_best_val(folder / "history.json", headline),
        test=((meta.get("metrics") or {}).get("test") or {}).get(headline), headline=headline,
        train_seconds=float(meta.get("train_seconds") or 0.0))


def _created(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text).astimezone() if text else None  # shown in local time
    except ValueError:
        return None


def _best_val(history_path: Path, headline: str) -> float | None:
    try:
        history = json.loads(history_path.read_text())
    except (OSError, ValueError):
        return None
    values = [record[f"val_{headline}"] for record in history if record.get(f"val_{headline}") is not None]
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
