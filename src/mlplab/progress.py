"""What ``mlplab train`` prints while it trains: the loss every ``log_every`` epochs, and on a terminal a
live bar (tqdm) with the epoch, the time left, epochs per second and the current loss and validation
metric, redrawn in place under the printed lines.

Off a terminal (a pipe, a log file, a test) the output is the plain lines only, byte for byte the same
as ever, and tqdm is never imported, so it costs nothing where it is not shown.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from .training import Callback, TrainingState

__all__ = ["Progress", "format_record"]

BAR_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} epochs [{elapsed}, ETA {remaining}, {rate_fmt}]{postfix}"


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
    parts = [f"loss {record['train_loss']:.4f}"]
    for split in ("val", "test"):
        metric = next((key for key in (f"{split}_accuracy", f"{split}_r2") if key in record), None)
        if metric:
            parts.append(f"{metric.replace('_', ' ').replace('r2', 'R²')} {record[metric]:.4f}")
            break
    return ", ".join(parts)


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

    def __init__(self, total_epochs: int, log_every: int, stream: TextIO | None = None, live: bool | None = None,
                 refresh_seconds: float = 0.1):
        self.total, self.log_every, self.refresh_seconds = total_epochs, log_every, refresh_seconds
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.bar: Any = None

    def on_train_begin(self, state: TrainingState) -> None:
        if self.live:
            from tqdm import tqdm  # only on a terminal: never imported for plain output

            self.bar = tqdm(total=self.total, initial=state.epoch, file=self.stream, unit=" epochs",
                            bar_format=BAR_FORMAT, mininterval=self.refresh_seconds, dynamic_ncols=True, leave=False)

    def on_epoch_end(self, state: TrainingState) -> None:
        record = state.history[-1]
        epoch = record["epoch"]
        if self.bar is not None:
            self.bar.set_postfix_str(bar_postfix(record), refresh=False)
            self.bar.update(epoch - self.bar.n)
        if epoch == 1 or epoch % self.log_every == 0 or epoch == self.total:
            line = format_record(record, self.total)
            if self.bar is not None:
                self.bar.write(line, file=self.stream)  # above the bar, which is redrawn under it
            else:
                self.stream.write(line + "\n")
                self.stream.flush()

    def on_train_end(self, state: TrainingState) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if state.stop_reason:
            self.stream.write(state.stop_reason + "\n")
            self.stream.flush()
