"""Data-parallel training through the CLI: samples per second and peak memory on 1M x 20 rows (20-64-64-1,
Adam, batch 1024, one epoch, the file defaults otherwise), each run a fresh ``mlplab train`` process.

Peer: ``mlplab train`` in one process. Beside it: ``--nproc 1``; ``--nproc 2`` on a Parquet file of one row
group (every rank reads the whole file); ``--nproc 2`` on the same rows in 16 row groups (each rank reads
its 8, :mod:`mlplab.sharded`). Throughput is the training rows over the run's own training time
(``train_seconds`` in run.json), so start-up and reading are not counted. Memory is the peak resident size of
the largest process of the command (a rank: the launcher holds no data), read from ``RUSAGE_CHILDREN`` of a
fresh wrapper process. Interleaved repeats, medians.

On a machine with 2 CPU cores, 2 ranks share the cores that 1 process already keeps busy and add an
all-reduce per batch, so they are expected to be slower; the gain is for one rank per GPU or per machine.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from . import Row
from .large import make_data

ROWS = {"tiny": 2_048, "quick": 200_000, "full": 1_000_000}
REPEATS = {"tiny": 1, "quick": 1, "full": 3}
GROUPS = 16
PEAK = "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); " \
       "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"


def _write(folder: Path, n_rows: int) -> tuple[Path, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    x, y = make_data(n_rows)
    table = pa.table({**{f"x{i + 1}": x[:, i] for i in range(x.shape[1])}, "y": y.astype("int64")})
    whole, grouped = folder / "one-group.parquet", folder / "groups.parquet"
    pq.write_table(table, whole, row_group_size=n_rows)
    pq.write_table(table, grouped, row_group_size=-(-n_rows // GROUPS))
    return whole, grouped


def run(size: str) -> list[Row]:
    n_rows = ROWS[size]
    with tempfile.TemporaryDirectory() as folder:
        whole, grouped = _write(Path(folder), n_rows)
        cases = {"1 process": (whole, []), "1 rank": (whole, ["--nproc", "1"]),
                 "2 ranks, whole file each": (whole, ["--nproc", "2"]),
                 "2 ranks, row groups read per rank": (grouped, ["--nproc", "2"])}
        speed: dict[str, list[float]] = {name: [] for name in cases}
        memory: dict[str, list[float]] = {name: [] for name in cases}
        for repeat in range(REPEATS[size]):
            for number, (name, (path, extra)) in enumerate(cases.items()):
                out = Path(folder) / f"run-{repeat}-{number}"
                command = [sys.executable, "-m", "mlplab", "train", "--data", str(path), "--target", "y", "--hidden",
                           "64", "64", "--optimizer", "adam", "--batch-size", "1024", "--epochs", "1", "--quiet",
                           "--out", str(out), *extra]
                peak = subprocess.run([sys.executable, "-c", PEAK, *command], check=True, capture_output=True,
                                      text=True).stdout.split()[-1]
                meta = json.loads((out / "run.json").read_text())
                train_rows = sum(meta["data"]["shard"]["train_rows"]) if "shard" in meta["data"] else \
                    round((n_rows - round(n_rows * 0.2)) * 0.9)
                speed[name].append(train_rows / meta["train_seconds"] / 1e6)
                memory[name].append(int(peak) / 1024)
    task = f"DDP via CLI: {n_rows // 1000}k x 20, 20-64-64-1, Adam, batch 1024, 1 epoch"
    single, mem = statistics.median(speed["1 process"]), statistics.median(memory["1 process"])
    rows = []
    for name in list(cases)[1:]:
        rows.append(Row(task, "mlplab train, 1 process", "M samples/s", single, statistics.median(speed[name]),
                        better="higher", note=f"mlplab train --nproc: {name}"))
        rows.append(Row(task + ": peak RSS of the largest process", "mlplab train, 1 process", "MiB", mem,
                        statistics.median(memory[name]), note=f"mlplab train --nproc: {name}"))
    return rows
