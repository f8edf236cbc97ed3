"""Reading a CSV: ``mlplab.read_table`` beside ``pandas.read_csv`` on the same generated file.

The file has 22 columns (20 float features, an integer count and a text label) and 300k rows at
``full`` size (the size issue 10 measured: the old hand-written reader took 12.2 s and 474 MB there).
Each reader runs in its own fresh interpreter so their memory does not mix: peak RSS growth during
the first read (the memory a user's process needs for it), then the median time of further reads.
Import times of pyarrow's CSV module and of pandas are measured the same way, since pyarrow is a core
dependency imported only when a file is read.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import Row

ROWS = {"tiny": 3_000, "quick": 100_000, "full": 300_000}
REPEATS = {"tiny": 1, "quick": 3, "full": 5}

# Runs in a fresh interpreter: import, read once for memory, read REPEATS more times for time.
_MEASURE = """
import json, resource, statistics, sys, time
started = time.perf_counter()
{imports}
imported = time.perf_counter() - started
path, repeats = sys.argv[1], int(sys.argv[2])
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
before = peak()
table = {read}
grown = peak() - before
del table
times = []
for _ in range(repeats):
    started = time.perf_counter()
    table = {read}
    times.append(time.perf_counter() - started)
    del table
print(json.dumps({{"seconds": statistics.median(times), "bytes": grown, "import": imported}}))
"""
READERS = {
    "pandas": ("import pandas", "pandas.read_csv(path)"),
    "mlplab": ("import mlplab.readers, pyarrow.csv", "mlplab.readers.read_table(path)"),
}


def write_csv(path: Path, n_rows: int, seed: int = 0) -> None:
    """A 300k x 22 table like a user's: 20 float features, an integer count, a text label."""
    import pyarrow as pa
    from pyarrow import csv as pa_csv

    rs = np.random.RandomState(seed)
    columns = {f"f{i}": np.round(rs.normal(size=n_rows), 6) for i in range(20)}
    columns["count"] = rs.randint(0, 1000, size=n_rows)
    columns["label"] = np.array(["cat", "dog", "bird"])[rs.randint(0, 3, size=n_rows)]
    pa_csv.write_csv(pa.table(columns), path)


def measure(reader: str, path: Path, repeats: int, in_process: bool = False) -> dict[str, float]:
    imports, read = READERS[reader]
    if in_process:  # the test suite's smoke run: the code path, not the figures (no fresh interpreter)
        import pandas

        import mlplab.readers

        started = time.perf_counter()
        (pandas.read_csv if reader == "pandas" else mlplab.readers.read_table)(path)
        return {"seconds": time.perf_counter() - started, "bytes": 0.0, "import": 0.0}
    script = _MEASURE.format(imports=imports, read=read)
    out = subprocess.run([sys.executable, "-c", script, str(path), str(repeats)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run(size: str) -> list[Row]:
    n_rows = ROWS[size]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "table.csv"
        write_csv(path, n_rows)
        pandas, ours = (measure(reader, path, REPEATS[size], size == "tiny") for reader in ("pandas", "mlplab"))
    task = f"read CSV {n_rows // 1000}k x 22"
    rows = [Row(task, "pandas.read_csv", "s", pandas["seconds"], ours["seconds"], target=">= 0.67x",
                note="median of warm reads")]
    if size == "tiny":  # in-process: no memory or import figures to give
        return rows
    return rows + [
        Row(task, "pandas.read_csv", "MB", pandas["bytes"] / 1e6, ours["bytes"] / 1e6, target=">= 0.67x",
            note="peak RSS growth, first read"),
        Row("import reader", "import pandas", "s", pandas["import"], ours["import"],
            note="mlplab: import mlplab.readers + pyarrow.csv (only when a file is read)"),
    ]
