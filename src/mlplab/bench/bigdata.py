"""Large data as users run it: 1M x 20 rows, 20-64-64-1, Adam lr 1e-3, batch 1024, one epoch.

- ``mlplab train --data big.npz ...`` as a whole process (reading, the 80/20 split, training, the final
  metrics, saving) against a scikit-learn script doing the same (load, split, ``MLPClassifier.fit``,
  score) and, for memory, the bare torch loop (load, fused Adam over shuffled batches, nothing else).
- The estimator's ``fit`` on float32 input, default settings otherwise, against ``MLPClassifier.fit``
  (each script times its own ``fit`` call; the data stay float32 unless asked otherwise).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from . import Row
from .large import make_data
from .process import Script, cli, interleaved, median_peak, median_seconds

ROWS = {"tiny": 4_096, "quick": 200_000, "full": 1_000_000}
REPEATS = {"tiny": 1, "quick": 2, "full": 3}

SKLEARN_CLI = '''
import warnings
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
data = np.load("big.npz")
x_train, x_test, y_train, y_test = train_test_split(data["X"], data["y"], test_size=0.2, random_state=0,
                                                    stratify=data["y"])
model = MLPClassifier(hidden_layer_sizes=(64, 64), batch_size=1024, max_iter=1, random_state=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    model.fit(x_train, y_train)
print(model.score(x_train, y_train), model.score(x_test, y_test))
'''

BARE = '''
import numpy as np
import torch
data = np.load("big.npz")
x, y = torch.from_numpy(data["X"]), torch.from_numpy(data["y"]).float()
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                            torch.nn.Linear(64, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
loss_fn = torch.nn.BCEWithLogitsLoss()
order = torch.randperm(len(x))
for xb, yb in zip(x[order].split(1024), y[order].split(1024)):
    optimizer.zero_grad()
    loss_fn(model(xb).squeeze(-1), yb).backward()
    optimizer.step()
'''

FIT = '''
import sys, time, warnings
import numpy as np
data = np.load("big.npz")
x, y = data["X"], data["y"]
if sys.argv[1] == "mlplab":
    from mlplab import NeuralNetClassifier as Estimator
    names = Estimator().get_params()
    # scikit-learn's parameter names where this mlplab has them
    settings = {"hidden_layer_sizes" if "hidden_layer_sizes" in names else "hidden_sizes": (64, 64),
                "max_iter" if "max_iter" in names else "epochs": 1,
                "learning_rate_init" if "learning_rate_init" in names else "learning_rate": 1e-3}
else:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier as Estimator
    warnings.simplefilter("ignore", ConvergenceWarning)
    settings = {"hidden_layer_sizes": (64, 64), "max_iter": 1, "learning_rate_init": 1e-3}
model = Estimator(batch_size=1024, random_state=0, **settings)
started = time.perf_counter()
model.fit(x, y)
print(time.perf_counter() - started)
'''


def write_data(folder: Path, n_rows: int) -> None:
    x, y = make_data(n_rows)
    np.savez(folder / "big.npz", X=x, y=y.astype(np.int64))  # integer labels: a classification target


def run(size: str) -> list[Row]:
    n_rows, in_process = ROWS[size], size == "tiny"
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        write_data(folder, n_rows)
        scripts = {
            "mlplab": cli("train", "--data", "big.npz", "--target", "y", "--hidden", "64", "64", "--optimizer", "adam",
                          "--lr", "0.001", "--batch-size", "1024", "--epochs", "1", "--out", "run", "--force"),
            "sklearn": Script(SKLEARN_CLI),
            "bare": Script(BARE),
            "fit mlplab": Script(FIT, ["mlplab"], mlplab=True),
            "fit sklearn": Script(FIT, ["sklearn"]),
        }
        results = interleaved(scripts, folder, REPEATS[size], in_process)
    task = f"`mlplab train` {n_rows:,} x 20 .npz, 20-64-64-1, Adam, 1 epoch"
    rows = [Row(task, "scikit-learn script (load, split, fit, score)", "s", median_seconds(results["sklearn"]),
                median_seconds(results["mlplab"]), target=">= 1x"),
            Row(task, "bare torch loop", "s", median_seconds(results["bare"]), median_seconds(results["mlplab"]))]
    fit_times = {name: float(np.median([float(r.stdout.split()[-1]) for r in results[f"fit {name}"]]))
                 for name in ("mlplab", "sklearn")}
    fit_task = f"NeuralNetClassifier.fit, {n_rows:,} x 20 float32, 1 epoch"
    rows.append(Row(fit_task, "MLPClassifier.fit", "s", fit_times["sklearn"], fit_times["mlplab"], target=">= 1x"))
    if not in_process:  # peaks of fresh processes only
        peak = {name: median_peak(values) / 2**20 for name, values in results.items()}
        rows += [Row(task, "bare torch loop", "MiB peak RSS", peak["bare"], peak["mlplab"],
                     target=">= 0.67x (<= 1.5x its memory)"),
                 Row(task, "scikit-learn script", "MiB peak RSS", peak["sklearn"], peak["mlplab"]),
                 Row(fit_task, "MLPClassifier.fit", "MiB peak RSS", peak["fit sklearn"], peak["fit mlplab"])]
    return rows
