"""The decision boundary and the loss evolving over training, from the weight snapshots a run records
with ``--snapshot-every N``: a GIF always, and an MP4 as well when ffmpeg is on the PATH. Each frame is
drawn exactly as ``mlplab plot boundary`` draws the finished model (regions, boundary line, train and
test points, legend), beside the loss curve up to that epoch."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from .boundary import BoundaryView
from .config import MlplabError
from .plots import CLASS_COLOURS, FIGURE_SIZE, require_matplotlib

__all__ = ["animate"]


def animate(model: Any, snapshots: list[dict[str, Any]], history: list[dict[str, Any]],
            splits: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path, resolution: int = 80,
            frame_seconds: float = 0.15, features: tuple[str, str] | None = None, pca: bool = False) -> list[Path]:
    """Write one frame per snapshot to ``path`` (.gif) and, with ffmpeg, the same as .mp4; returns the
    files written. ``splits`` maps split names to encoded (x, y) as for :func:`mlplab.plots.plot_boundary`,
    and the plane is chosen the same way (``features``, ``pca``; more than two inputs: PCA)."""
    if not snapshots:
        raise MlplabError("this run recorded no weight snapshots; train it with --snapshot-every N "
                          "(e.g. --snapshot-every 20) to animate it")
    plt = require_matplotlib()
    from matplotlib import animation
    from matplotlib.colors import Normalize

    view = BoundaryView(model, splits, features, pca, resolution)
    frame_model = copy.deepcopy(model)
    epochs = [record["epoch"] for record in history]
    losses = [record["train_loss"] for record in history]

    figure, (ax, loss_ax) = plt.subplots(1, 2, figsize=(FIGURE_SIZE[0] * 1.7, FIGURE_SIZE[1]),
                                         gridspec_kw={"width_ratios": [1.25, 1]})
    norm = Normalize(*view.value_range(view.outputs())) if model.task == "regression" else None
    image = view.draw(ax, view.outputs(), norm)  # the finished model: fixes the layout and the colour scale
    if model.task != "multiclass":
        label = f"P(label {model.classes[1]})" if model.task == "binary" else "prediction"
        figure.colorbar(image, ax=ax, label=label, pad=0.02)
    loss_ax.plot(epochs, losses, color="#BBBBBB", label="whole run")
    (progress,) = loss_ax.plot([], [], color=CLASS_COLOURS[0], label="so far")
    marker = loss_ax.axvline(0, color="#555555", linestyle="--")
    if losses and min(losses) > 0 and max(losses) / min(losses) > 100:
        loss_ax.set_yscale("log")
    loss_ax.set(xlabel="epoch", ylabel="train loss", title="Loss")
    loss_ax.legend(fontsize="small")
    figure.tight_layout()

    def draw(index: int):
        snapshot = snapshots[index]
        frame_model.module.load_state_dict(snapshot["weights"])
        for artist in [*ax.images, *ax.collections]:  # redraw the plane: regions, contour, points
            artist.remove()
        view.draw(ax, view.outputs(frame_model), norm)
        ax.set_title(f"{'Prediction surface' if model.task == 'regression' else 'Decision boundary'}, "
                     f"epoch {snapshot['epoch']}")
        done = [i for i, epoch in enumerate(epochs) if epoch <= snapshot["epoch"]]
        progress.set_data([epochs[i] for i in done], [losses[i] for i in done])
        marker.set_xdata([snapshot["epoch"], snapshot["epoch"]])
        return [progress, marker]

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
