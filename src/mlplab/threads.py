"""How many CPU threads training and inference use: chosen by the work of one step.

torch (and NumPy's BLAS) start one thread per core. For a small network each operation is far too small
to split: the threads only synchronise, and on a busy machine every parallel region waits for a thread
the scheduler has not run yet. Measured on 2 shared cores at load ~12: one epoch of a 20-64-64-1 network
over 200k rows took 2.4-4.7 s with one thread and 109-112 s with two. So mlplab gives a step one thread
per ``WORK_PER_THREAD`` floating-point operations, at least one and at most one per core; a step of the
tutorial's network, or of 64-unit layers on 1024-row batches, gets one.

``training.threads`` (``--threads N``) sets the number instead; so does ``OMP_NUM_THREADS`` (or
``MKL_NUM_THREADS``) in the environment, which mlplab then leaves to torch. The setting applies while
mlplab trains or predicts and is put back afterwards, so a notebook's own torch settings are kept.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

__all__ = ["WORK_PER_THREAD", "choose_threads", "step_flops", "thread_limit"]

WORK_PER_THREAD = 2e8
"""Floating-point operations in one step (forward and backward over one batch) worth one more thread:
~10 ms of one core, long enough that a thread starting late costs little."""

ENVIRONMENT = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def step_flops(sizes: Sequence[int], rows: int, backward: bool = True) -> float:
    """Multiply-adds x 2 of the layers' products for ``rows`` rows; x 3 with the backward pass."""
    products = sum(fan_in * fan_out for fan_in, fan_out in zip(sizes, sizes[1:]))
    return 2.0 * rows * products * (3 if backward else 1)


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def choose_threads(sizes: Sequence[int], rows: int, requested: int = 0, backward: bool = True) -> int | None:
    """Threads for steps of ``rows`` rows through layers ``sizes``; ``requested`` (> 0) wins. None means
    "leave torch's setting alone" (the environment chose it)."""
    if requested:
        return int(requested)
    if any(os.environ.get(name) for name in ENVIRONMENT):
        return None
    return max(1, min(cores(), int(step_flops(sizes, rows, backward) // WORK_PER_THREAD)))


@contextlib.contextmanager
def thread_limit(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` threads in torch and in NumPy's BLAS (through threadpoolctl where
    installed); put the previous settings back after. None changes nothing."""
    if threads is None:
        yield
        return
    import torch

    saved = torch.get_num_threads()
    with contextlib.ExitStack() as stack:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # NumPy's BLAS keeps its own setting; only the fast path's products use it
            pass
        else:
            stack.enter_context(threadpool_limits(limits=threads, user_api="blas"))
        if threads != saved:
            torch.set_num_threads(threads)
        try:
            yield
        finally:
            if threads != saved:
                torch.set_num_threads(saved)
