"""A run's figures: load what a run folder holds (model, data, history, snapshots) and draw the
standard set into it (``mlplab train --plots``), or one figure at a time (``mlplab plot ...``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import load_snapshots
from .config import Config, MlplabError
from .data import Dataset, describe_data_source, load_dataset
from .inference import TrainedModel, load
from .runfolder import read_json, resolve

__all__ = ["SavedRun", "load_run", "write_figures"]

FORMATS = ("png", "svg", "pdf")


@dataclass
class SavedRun:
    folder: Path
    model: TrainedModel
    dataset: Dataset
    history: list[dict[str, Any]]
    snapshots: list[dict[str, Any]]

    @property
    def splits(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        splits = {"train": (self.dataset.x_train, self.dataset.y_train)}
        if self.dataset.x_test is not None:
            splits["test"] = (self.dataset.x_test, self.dataset.y_test)
        return splits


def load_run(path: str | Path, announce: Callable[[str], None] | None = None) -> SavedRun:
    """The model and, rebuilt from the saved config (same seed, same split), the data of a run folder.
    ``announce`` is told which data file the run names, before it is read."""
    folder = Path(path)
    model = load(folder, allow_incomplete=True)  # figures of a run still in progress are useful
    if not folder.is_dir():
        raise MlplabError(f"{folder} is a checkpoint file; plots of a run need its folder")
    config = Config.from_dict(model.meta["config"]).validate()
    history_file = resolve(folder / "history.json")
    history = read_json(history_file, "history file") if history_file is not None and history_file.exists() else []
    if not isinstance(history, list) or not all(isinstance(record, dict) for record in history):
        raise MlplabError(f"{folder / 'history.json'} is damaged: expected a list of per-epoch records")
    snapshots = load_snapshots(folder / "snapshots.pt", model.module.state_dict())
    if config.data.path is not None and announce is not None:  # a path named inside the run: say which
        announce(describe_data_source(model.meta.get("data") or {}, config.data.path))
    return SavedRun(folder, model, load_dataset(config), history, snapshots)


def figure_path(folder: Path, name: str, fmt: str) -> Path:
    if fmt not in FORMATS:
        raise MlplabError(f"--format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    return folder / f"{name}.{fmt}"


def write_figures(path: str | Path, fmt: str = "png") -> list[Path]:
    """Write the standard figures of a run into its folder: data, boundary, history, network, neurons
    (2 inputs only) and the animation (when snapshots were recorded). Returns the files written."""
    from . import plots

    run = load_run(path)
    model, folder = run.model, run.folder
    names = model.preprocessor.column_names if model.preprocessor.all_numeric else None
    figures = {
        "data": plots.plot_data(run.dataset.x_train, run.dataset.y_train, model.task, model.classes, names,
                                title=f"Data: {run.dataset.source['name']} (training rows)"),
        "boundary": plots.plot_boundary(model, run.splits),
        "history": plots.plot_history(run.history, model.meta.get("best_epoch")),
        "network": plots.plot_network(model),
    }
    if model.module.sizes[0] == 2 and len(model.module.sizes) > 2:
        figures["neurons"] = plots.plot_neurons(model, run.dataset.x_train)
    written = [plots.save(figure, figure_path(folder, name, fmt)) for name, figure in figures.items()]
    if run.snapshots:
        from .animation import animate

        written += animate(model, run.snapshots, run.history, run.splits, folder / "animation.gif")
    return written
