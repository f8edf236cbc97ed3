"""A small network on a busy machine: ``mlplab train`` (threads chosen by work size) against the same
command with torch's default threads (one per core, ``OMP_NUM_THREADS`` set to the core count), while
two busy-loop processes compete for the cores.

The workload is 200k x 20 rows, 20-64-64-1, Adam, batch 1024, one epoch: each step is too small to split
across threads, and when the cores are busy every parallel region waits for a thread that is not
running (measured: 2 threads 25-45x slower than 1 at load ~12 on 2 cores).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import Row
from .large import make_data
from .process import cli, interleaved, median_seconds

ROWS = {"tiny": 2_048, "quick": 50_000, "full": 200_000}
REPEATS = {"tiny": 1, "quick": 2, "full": 3}
LOAD = 2  # busy-loop processes


def run(size: str) -> list[Row]:
    n_rows, in_process = ROWS[size], size == "tiny"
    cores = str(os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        x, y = make_data(n_rows)
        np.savez(folder / "data.npz", X=x, y=y.astype(np.int64))
        args = ("train", "--data", "data.npz", "--target", "y", "--hidden", "64", "64", "--optimizer", "adam",
                "--lr", "0.001", "--batch-size", "1024", "--epochs", "1", "--out", "run", "--force", "--quiet")
        scripts = {"mlplab": cli(*args), "torch default": cli(*args, env={"OMP_NUM_THREADS": cores})}
        busy = [] if in_process else [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                                      for _ in range(LOAD)]
        try:
            results = interleaved(scripts, folder, REPEATS[size], in_process)
        finally:
            for process in busy:
                process.kill()
                process.wait()
    return [Row(f"`mlplab train` {n_rows:,} x 20, 20-64-64-1, Adam, 1 epoch, {LOAD} busy loops running",
                f"same, torch's default threads ({cores})", "s", median_seconds(results["torch default"]),
                median_seconds(results["mlplab"]), target="no collapse (>= 1x)")]
