"""Ctrl-C and SIGTERM during training: finish the epoch, save a resumable checkpoint, say how to resume.

A signal only sets a flag; the training loop looks at it after each epoch (:class:`StopOnSignal`), so
the checkpoint is saved between two epochs, from a consistent state, by the one thread that trains.
A second signal while the first is being handled is not swallowed: it interrupts at once, as usual.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .config import MlplabError
from .training import Callback, TrainingState

__all__ = ["StopOnSignal", "TrainingInterrupted", "stop_signals"]

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal number, as shells report it


class TrainingInterrupted(MlplabError):
    """Training stopped on SIGINT/SIGTERM after saving a resumable checkpoint; ``exit_code`` is 130/143."""

    def __init__(self, signal_number: int, epoch: int, total: int, path: Path | None):
        self.exit_code = EXIT_CODES.get(signal_number, 130)
        name = signal.Signals(signal_number).name
        if path is None:
            message = f"interrupted ({name}) after epoch {epoch} of {total}; nothing was saved (no run folder)"
        else:
            message = (f"interrupted ({name}) after epoch {epoch} of {total}; saved a resumable checkpoint in "
                       f"{path}; resume with: mlplab train --resume {path}")
        super().__init__(message)


class _Flag:
    signal_number: int | None = None


@contextmanager
def stop_signals(enabled: bool = True) -> Iterator[_Flag]:
    """While active (main thread only), SIGINT and SIGTERM set ``flag.signal_number`` instead of
    stopping the process; the previous handlers come back afterwards and after the first signal."""
    flag = _Flag()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {number: signal.getsignal(number) for number in EXIT_CODES}

    def handle(number, frame):
        flag.signal_number = number
        for other, handler in previous.items():  # a second signal acts at once
            signal.signal(other, handler)

    for number in EXIT_CODES:
        signal.signal(number, handle)
    try:
        yield flag
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


class StopOnSignal(Callback):
    """After each epoch: if a signal came, save (``save(state)``) and stop. Runs last, so the saved
    state is the one every other callback has finished with (early stopping's best weights included)."""

    reads_scores_every_epoch = False

    def __init__(self, flag: _Flag, save: Callable[[TrainingState], None]):
        self.flag, self.save = flag, save
        self.stopped_at: int | None = None

    def on_epoch_end(self, state: TrainingState) -> None:
        if self.flag.signal_number is not None and self.stopped_at is None:
            self.save(state)
            self.stopped_at = state.epoch
            state.stop_reason = f"interrupted ({signal.Signals(self.flag.signal_number).name})"
