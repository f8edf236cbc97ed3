"""Will it fit? Memory and disk estimates checked before any large allocation or any training.

A size that cannot fit (``--hidden 100000000``, ``--n-train 10000000000``) is refused at once with the
estimate, instead of an allocation that takes minutes, swaps, or dies with a MemoryError traceback.
The estimates are deliberately rough and only refuse what exceeds the machine's whole memory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from .config import ConfigError

__all__ = ["check_data_fits", "check_network_fits", "checkpoint_bytes_estimate", "total_memory"]

STATES_PER_PARAMETER = {"sgd": 0, "adam": 2, "adamw": 2, "rmsprop": 1}  # optimiser buffers per weight


def total_memory() -> int | None:
    """Bytes of memory this process may use: the machine's RAM, or a smaller cgroup limit."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        total = None
    try:
        with open("/sys/fs/cgroup/memory.max") as handle:
            limit = handle.read().strip()
        if limit.isdigit():
            total = min(total or int(limit), int(limit))
    except OSError:
        pass
    return total


def _gb(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.1f} GB"


def n_parameters(sizes: Sequence[int]) -> int:
    return sum(fan_in * fan_out + fan_out for fan_in, fan_out in zip(sizes, sizes[1:]))


def check_network_fits(sizes: Sequence[int], itemsize: int, optimizer: str, momentum: float,
                       batch_rows: int) -> None:
    """Refuse a network whose weights, gradients, optimiser state and activations for one batch
    cannot fit in memory."""
    states = STATES_PER_PARAMETER.get(optimizer, 2) + (1 if momentum > 0 else 0)
    parameters = n_parameters(sizes)
    needed = parameters * itemsize * (3 + states) + batch_rows * sum(sizes[1:]) * itemsize * 3
    total = total_memory()
    if total is not None and needed > total:
        raise ConfigError("model.hidden_sizes", f"{list(sizes[1:-1])} make a network of {parameters:,} weights that "
                                                f"needs about {_gb(needed)} to train on {batch_rows:,} rows, more than "
                                                f"this machine's {_gb(total)} of memory")


def check_data_fits(n_rows: int, n_columns: int, key: str = "data.n_train") -> None:
    """Refuse generating a data set that cannot fit (the generators make float64 rows, then copies)."""
    needed = n_rows * (n_columns + 1) * 8 * 3
    total = total_memory()
    if total is not None and needed > total:
        raise ConfigError(key, f"asks for {n_rows:,} rows, which need about {_gb(needed)}, more than this machine's "
                               f"{_gb(total)} of memory")


def checkpoint_bytes_estimate(sizes: Sequence[int], itemsize: int, optimizer: str, snapshots: int = 0) -> int:
    """About what a run folder will take on disk: the checkpoint (weights and optimiser state), model.pt,
    and any weight snapshots."""
    weights = n_parameters(sizes) * itemsize
    return weights * (2 + STATES_PER_PARAMETER.get(optimizer, 2) + snapshots) + 64 * 1024
