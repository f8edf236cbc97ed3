"""``mlplab predict RUN --input FILE --output out.csv`` on 1M rows of CSV and Parquet, whole processes.

The peer is the script a user would write without mlplab: pyarrow reads the file, torch runs the same
20-64-64-1 network (loaded from the run's ``model.pt``) over every row in one pass, and
``pyarrow.csv.write_csv`` writes the features, the label and both class probabilities. Throughput is rows
per second of the whole process; memory is each process's own peak resident size.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from . import Row
from .process import Script, cli, interleaved, median_peak, median_seconds

ROWS = {"tiny": 2_000, "quick": 200_000, "full": 1_000_000}
REPEATS = {"tiny": 1, "quick": 2, "full": 3}
N_FEATURES = 20

PEER = '''
import sys
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import torch

source, out = sys.argv[1], sys.argv[2]
table = pq.read_table(source) if source.endswith(".parquet") else pacsv.read_csv(source)
names = [f"x{i}" for i in range(1, 21)]
x = np.column_stack([table.column(name).to_numpy() for name in names]).astype(np.float32)
state = torch.load("model/model.pt", weights_only=True)
model = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                            torch.nn.Linear(64, 1))
model.load_state_dict({f"{2 * (int(key.split('.')[0][7:]) - 1)}.{key.split('.')[1]}": value
                       for key, value in state.items()})
with torch.inference_mode():
    z = model(torch.from_numpy(x)).numpy()[:, 0].astype(np.float64)
p = 1.0 / (1.0 + np.exp(-z))
table = table.select(names)
table = table.append_column("prediction", pa.array((p >= 0.5).astype(np.int64)))
table = table.append_column("p_0", pa.array(1.0 - p)).append_column("p_1", pa.array(p))
pacsv.write_csv(table, out)
'''


def write_inputs(folder: Path, n_rows: int) -> None:
    """train.csv (2,000 labelled rows), rows.csv and rows.parquet (``n_rows`` rows of 20 features)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    names = [f"x{i}" for i in range(1, N_FEATURES + 1)]
    x = rng.standard_normal((2_000, N_FEATURES))
    train = pa.table({**{name: x[:, i] for i, name in enumerate(names)}, "y": (x[:, 0] * x[:, 1] > 0).astype(int)})
    pacsv.write_csv(train, folder / "train.csv")
    rows = rng.standard_normal((n_rows, N_FEATURES))
    table = pa.table({name: rows[:, i] for i, name in enumerate(names)})
    pacsv.write_csv(table, folder / "rows.csv")
    pq.write_table(table, folder / "rows.parquet")


def run(size: str) -> list[Row]:
    n_rows, in_process = ROWS[size], size == "tiny"
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        write_inputs(folder, n_rows)
        interleaved({"model": cli("train", "--data", "train.csv", "--target", "y", "--hidden", "64", "64",
                                  "--epochs", "1", "--scale", "none", "--out", "model", "--force", "--quiet")},
                    folder, 1, in_process, warmup=False)
        scripts = {}
        for kind in ("csv", "parquet"):
            scripts[f"mlplab {kind}"] = cli("predict", "model", "--input", f"rows.{kind}", "--output", "out.csv")
            scripts[f"peer {kind}"] = Script(PEER, [f"rows.{kind}", "peer.csv"])
        results = interleaved(scripts, folder, REPEATS[size], in_process)
    for kind in ("CSV", "Parquet"):
        ours, peer = results[f"mlplab {kind.lower()}"], results[f"peer {kind.lower()}"]
        task = f"`mlplab predict --input` {n_rows:,} rows, {kind}"
        rows.append(Row(task, "pyarrow + torch script", "k rows/s", n_rows / 1e3 / median_seconds(peer),
                        n_rows / 1e3 / median_seconds(ours), better="higher", target=">= 0.8x"))
        peer_peak, our_peak = median_peak(peer), median_peak(ours)
        if our_peak is not None:
            rows.append(Row(task, "pyarrow + torch script", "MiB peak RSS", peer_peak / 2**20, our_peak / 2**20,
                            target=">= 0.77x (<= 1.3x its memory)"))
    return rows
