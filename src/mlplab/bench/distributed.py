"""Data-parallel training: samples per second on 1M x 20 rows (20-64-64-1, Adam, batch 1024, one epoch)
for one process without DDP (the peer), and for 1 and 2 DDP ranks started by ``mlplab train --nproc``.

On a machine with 2 CPU cores, 2 ranks share the cores that 1 process already keeps busy and add an
all-reduce per batch, so they are expected to be slower; the gain is for one rank per GPU or per machine.
Throughput is the training rows over the run's own training time (``train_seconds`` in run.json), so the
processes' start-up is not counted.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from ..config import Config
from . import Row
from .large import make_data

ROWS = {"tiny": 2_048, "quick": 200_000, "full": 1_000_000}


def run(size: str) -> list[Row]:
    from ..distributed import train_distributed
    from ..run import train

    n_rows = ROWS[size]
    x, y = make_data(n_rows)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rows.npz"
        np.savez(path, X=x, y=y.astype(np.int64))
        config = Config.from_dict({"data": {"path": str(path)}, "model": {"hidden_sizes": [64, 64]},
                                   "training": {"optimizer": "adam", "batch_size": 1024, "epochs": 1}})
        train_rows = n_rows - round(n_rows * config.data.test_fraction)

        def throughput(folder_name: str) -> float:
            meta = json.loads((Path(folder) / folder_name / "run.json").read_text())
            return train_rows / meta["train_seconds"] / 1e6

        train(config, out=Path(folder) / "single")
        train_distributed(config, nproc=1, out=Path(folder) / "ddp1")
        train_distributed(config, nproc=2, out=Path(folder) / "ddp2")
        single, one, two = (throughput(name) for name in ("single", "ddp1", "ddp2"))
    task = f"DDP: {n_rows // 1000}k x 20, 20-64-64-1, Adam, batch 1024, 1 epoch"
    return [Row(task, "1 process, no DDP", "M samples/s", single, one, better="higher", note="mlplab: 1 DDP rank"),
            Row(task, "1 process, no DDP", "M samples/s", single, two, better="higher",
                note="mlplab: 2 DDP ranks on 2 cores")]
