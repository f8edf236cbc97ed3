"""What ``mlplab train`` prints while it trains: the loss every ``log_every`` epochs, and on a terminal a
live bar (rich) with the epochs done, the time left, epochs per second and the current loss and
validation metric, redrawn in place under the printed lines.

Off a terminal (a pipe, a log file, a test) the output is the plain lines only, byte for byte the same
as ever, and rich is never imported, so it costs nothing where it is not shown. (rich, not tqdm: once
tqdm is installed, ``import torch`` imports it through ``torch.hub``, on every run, bar or not.)
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from .training import Callback, TrainingState

__all__ = ["Progress", "format_record"]



def format_record(record: dict[str, Any], total: int) -> str:
    """One printed line: the epoch, the train loss and the evaluated split's loss and headline metric."""
    width = len(str(total))
    parts = [f"epoch {record['epoch']:>{width}}/{total}", f"train loss {record['train_loss']:.6f}"]
    for key in ("val_loss", "test_loss", "val_accuracy", "test_accuracy", "val_r2", "test_r2"):
        if key in record:
            parts.append(f"{key.replace('_', ' ')} {record[key]:.4f}")
    return "  ".join(parts)


def bar_postfix(record: dict[str, Any]) -> str:
    """The bar's live numbers: the train loss, then the validation (else test) metric."""
    parts = [f" loss {record['train_loss']:.4f}"]
    for split in ("val", "test"):
        metric = next((key for key in (f"{split}_accuracy", f"{split}_r2") if key in record), None)
        if metric:
            parts.append(f"{metric.replace('_', ' ').replace('r2', 'R²')} {record[metric]:.4f}")
            break
    return "  ".join(parts)


class Progress(Callback):
    """Print the loss at epoch 1, every ``log_every`` epochs and at the last; on a terminal (``live``,
    by default when ``stream`` is one) also a live bar. When training stops early, say why.

    Parameters
    ----------
    total_epochs, log_every : int
        The run's epochs and how often to print a line.
    stream : file, optional
        Where to write (default ``sys.stdout``).
    live : bool, optional
        Draw the live bar (default: when ``stream`` is a terminal).
    refresh_seconds : float
        The least time between two redraws of the bar.
    """

    reads_scores_every_epoch = False

    def __init__(self, total_epochs: int, log_every: int, stream: TextIO | None = None, live: bool | None = None,
                 refresh_seconds: float = 0.1):
        self.total, self.log_every, self.refresh_seconds = total_epochs, log_every, refresh_seconds
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.bar: Any = None
        self.scores: dict[str, Any] = {}

    def on_train_begin(self, state: TrainingState) -> None:
        if self.live:
            self.bar = LiveBar(self.total, state.epoch, self.stream, self.refresh_seconds)

    def on_epoch_end(self, state: TrainingState) -> None:
        record = state.history[-1]
        epoch = record["epoch"]
        if epoch == 1 or epoch % self.log_every == 0 or epoch == self.total:
            line = format_record(record, self.total)
            if self.bar is not None:
                self.bar.print(line)  # above the bar, which is redrawn under it
            else:
                self.stream.write(line + "\n")
                self.stream.flush()
        if self.bar is not None:  # the held-out scores of the last epoch that has them (log points)
            self.scores.update({key: value for key, value in record.items() if key.startswith(("val_", "test_"))})
            self.bar.update(epoch, bar_postfix({**self.scores, **record}))

    def on_train_end(self, state: TrainingState) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
        if state.stop_reason:
            self.stream.write(state.stop_reason + "\n")
            self.stream.flush()


class LiveBar:
    """rich's progress bar on ``stream``: epochs done of all, the time left, epochs/s, then the live
    numbers. Redrawn when asked, at most every ``refresh_seconds`` (no background thread)."""

    def __init__(self, total: int, done: int, stream: TextIO, refresh_seconds: float):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = Console(file=stream, highlight=False)
        self.progress = Progress(
            BarColumn(bar_width=12), MofNCompleteColumn(), TextColumn("epochs, ETA"), TimeRemainingColumn(),
            TextColumn("{task.fields[speed]}"), TextColumn("{task.fields[numbers]}"), console=self.console,
            auto_refresh=False, transient=True)
        self.task = self.progress.add_task("train", total=total, completed=done, speed="", numbers="")
        self.refresh_seconds, self.last_draw = refresh_seconds, 0.0
        self.progress.start()

    def print(self, line: str) -> None:
        self.console.out(line, highlight=False)

    def update(self, epoch: int, numbers: str) -> None:
        speed = self.progress.tasks[0].speed
        self.progress.update(self.task, completed=epoch, numbers=numbers,
                             speed=f"{speed:.1f} epochs/s" if speed else "")
        now = time.monotonic()
        if now - self.last_draw >= self.refresh_seconds:
            self.last_draw = now
            self.progress.refresh()

    def stop(self) -> None:
        self.progress.stop()
