"""The decision boundary and the loss evolving over training, from the weight snapshots a run records
with ``--snapshot-every N``: a GIF always, and an MP4 as well when ffmpeg is on the PATH."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from .config import MlplabError
from .plots import CLASS_COLOURS, FIGURE_SIZE, PROBABILITY_MAP, require_pyplot

__all__ = ["animate"]


def animate(model: Any, snapshots: list[dict[str, Any]], history: list[dict[str, Any]],
            x_train: np.ndarray, y_train: np.ndarray, path: str | Path, resolution: int = 80,
            frame_seconds: float = 0.15) -> list[Path]:
    """Write one frame per snapshot to ``path`` (.gif) and, with ffmpeg, the same as .mp4; returns the
    files written. The boundary is drawn over the input plane, so the network needs two inputs."""
    if not snapshots:
        raise MlplabError("this run recorded no weight snapshots; train it with --snapshot-every N "
                          "(e.g. --snapshot-every 20) to animate it")
    if model.module.sizes[0] != 2:
        raise MlplabError(f"plot animate draws the input plane: it needs 2 inputs, this network has "
                          f"{model.module.sizes[0]}")
    plt = require_pyplot()
    from matplotlib import animation

    frame_model = copy.deepcopy(model)
    view, names = x_train, model.preprocessor.feature_names
    pad = 0.1 * (view.max(axis=0) - view.min(axis=0) + 1e-9)
    u = np.linspace(view[:, 0].min() - pad[0], view[:, 0].max() + pad[0], resolution)
    v = np.linspace(view[:, 1].min() - pad[1], view[:, 1].max() + pad[1], resolution)
    grid_u, grid_v = np.meshgrid(u, v)
    grid = np.stack([grid_u.ravel(), grid_v.ravel()], axis=1)
    epochs = [record["epoch"] for record in history]
    losses = [record["train_loss"] for record in history]

    figure, (ax, loss_ax) = plt.subplots(1, 2, figsize=(FIGURE_SIZE[0] * 1.6, FIGURE_SIZE[1]))
    image = ax.imshow(np.zeros(grid_u.shape), origin="lower", extent=(u[0], u[-1], v[0], v[-1]), aspect="auto",
                      cmap=PROBABILITY_MAP, vmin=0, vmax=1 if model.task != "regression" else None)
    colours = [CLASS_COLOURS[int(label) % len(CLASS_COLOURS)] for label in y_train] \
        if model.task != "regression" else "white"
    ax.scatter(view[:, 0], view[:, 1], c=colours, edgecolors="black", s=24)
    ax.set(xlabel=names[0], ylabel=names[1])
    loss_ax.plot(epochs, losses, color="#BBBBBB")
    (progress,) = loss_ax.plot([], [], color=CLASS_COLOURS[0])
    marker = loss_ax.axvline(0, color="#555555", linestyle="--")
    loss_ax.set(xlabel="epoch", ylabel="train loss", title="Loss")
    figure.tight_layout()

    def draw(index: int):
        snapshot = snapshots[index]
        frame_model.module.load_state_dict(snapshot["weights"])
        outputs = frame_model.outputs(grid, encoded=True).probabilities
        if model.task == "multiclass":
            outputs = outputs.argmax(axis=1) / max(outputs.shape[1] - 1, 1)
        image.set_data(outputs.reshape(grid_u.shape))
        if model.task == "regression":
            image.set_clim(outputs.min(), outputs.max())
        done = [i for i, epoch in enumerate(epochs) if epoch <= snapshot["epoch"]]
        progress.set_data([epochs[i] for i in done], [losses[i] for i in done])
        marker.set_xdata([snapshot["epoch"], snapshot["epoch"]])
        ax.set_title(f"Decision boundary, epoch {snapshot['epoch']}")
        return image, progress, marker

    movie = animation.FuncAnimation(figure, draw, frames=len(snapshots), blit=False)
    path = Path(path).with_suffix(".gif")
    fps = max(1, round(1 / frame_seconds))
    movie.save(path, writer=animation.PillowWriter(fps=fps))
    written = [path]
    if shutil.which("ffmpeg"):
        movie.save(path.with_suffix(".mp4"), writer=animation.FFMpegWriter(fps=fps))
        written.append(path.with_suffix(".mp4"))
    plt.close(figure)
    return written
