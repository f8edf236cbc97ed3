"""A run's figures: load what a run folder holds (model, data, history, snapshots) and draw the
standard set into it (``mlplab train --plots``), or one figure at a time (``mlplab plot ...``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import Config, MlplabError
from .data import Dataset, load_dataset
from .run import TrainedModel, load

__all__ = ["RunData", "load_run", "write_figures"]

FORMATS = ("png", "svg", "pdf")


@dataclass
class RunData:
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


def load_run(path: str | Path) -> RunData:
    """The model and, rebuilt from the saved config (same seed, same split), the data of a run folder."""
    folder = Path(path)
    model = load(folder)
    if not folder.is_dir():
        raise MlplabError(f"{folder} is a checkpoint file; plots of a run need its folder")
    config = Config.from_dict(model.meta["config"]).validate()
    history = json.loads((folder / "history.json").read_text()) if (folder / "history.json").exists() else []
    snapshot_file = folder / "snapshots.pt"
    snapshots = torch.load(snapshot_file, weights_only=True) if snapshot_file.exists() else []
    return RunData(folder, model, load_dataset(config), history, snapshots)


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
        "boundary": plots.plot_boundary(model, run.splits, pca=model.module.sizes[0] > 2),
        "history": plots.plot_history(run.history, model.meta.get("best_epoch")),
        "network": plots.plot_network(model),
    }
    if model.module.sizes[0] == 2 and len(model.module.sizes) > 2:
        figures["neurons"] = plots.plot_neurons(model, run.dataset.x_train)
    written = [plots.save(figure, figure_path(folder, name, fmt)) for name, figure in figures.items()]
    if run.snapshots and model.module.sizes[0] == 2:
        from .animation import animate

        written += animate(model, run.snapshots, run.history, run.dataset.x_train, run.dataset.y_train,
                           folder / "animation.gif")
    return written
