"""1M rows x 20 features: training throughput (20-64-64-1, Adam, batch 1024, one epoch), inference
throughput, and peak memory.

Training peers: the standard DataLoader(TensorDataset) loop, scikit-learn's MLPClassifier (adam, one
epoch), and the bare floor (forward, backward and fused Adam on batches sliced beforehand). Inference
peers: MLPClassifier.predict_proba and a plain ``model(x)`` over the whole array. Memory: the peak
resident size of a fresh process that makes the data and trains with mlplab, against the same process
once torch is imported (the baseline), in units of the data's bytes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import torch

from . import Row, median_time

ROWS = {"tiny": 4_096, "quick": 200_000, "full": 1_000_000}
REPEATS = {"tiny": 1, "quick": 1, "full": 3}
BATCH = 1024


def make_data(n_rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_rows, 20), dtype=np.float32)  # float32 from the start: no float64 copy
    w = (np.random.default_rng(12345).standard_normal(20) / np.sqrt(20)).astype(np.float32)  # same concept
    y = (np.tanh(2 * x @ w) + 0.5 * np.sin(3 * x[:, 0]) + 0.1 * rng.standard_normal(n_rows, dtype=np.float32)) > 0
    return x, y.astype(np.float32)


def _module() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64),
                               torch.nn.ReLU(), torch.nn.Linear(64, 1))


def dataloader_epoch(x: torch.Tensor, y: torch.Tensor) -> torch.nn.Module:
    from torch.utils.data import DataLoader, TensorDataset

    model = _module()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for xb, yb in DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True):
        optimizer.zero_grad()
        loss_fn(model(xb).squeeze(-1), yb).backward()
        optimizer.step()
    return model


def bare_epoch(batches: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.nn.Module:
    model = _module()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for xb, yb in batches:
        optimizer.zero_grad()
        loss_fn(model(xb).squeeze(-1), yb).backward()
        optimizer.step()
    return model


def sklearn_epoch(x: np.ndarray, y: np.ndarray):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(hidden_layer_sizes=(64, 64), batch_size=BATCH, max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(x, y)


def mlplab_epoch(x: np.ndarray, y: np.ndarray):
    from ..estimator import NeuralNetClassifier

    return NeuralNetClassifier(hidden_layer_sizes=(64, 64), batch_size=BATCH, max_iter=1, learning_rate_init=1e-3,
                               alpha=0.0, scale="none", dtype="float32", random_state=0).fit(x, y)


def _accuracy(logits_or_probability: np.ndarray, y: np.ndarray, threshold: float) -> float:
    return float(((logits_or_probability.reshape(-1) >= threshold) == (y >= 0.5)).mean())


def run(size: str) -> list[Row]:
    n_rows, repeats = ROWS[size], REPEATS[size]
    x, y = make_data(n_rows)
    x_check, y_check = make_data(50_000 if size != "tiny" else 1_000, seed=1)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    per_second = n_rows / 1e6

    loader = per_second / median_time(lambda: dataloader_epoch(xt, yt), repeats)
    order = torch.randperm(n_rows)
    batches = list(zip(xt[order].split(BATCH), yt[order].split(BATCH)))
    bare = per_second / median_time(lambda: bare_epoch(batches), repeats)
    sklearn = per_second / median_time(lambda: sklearn_epoch(x, y), repeats)
    ours = per_second / median_time(lambda: mlplab_epoch(x, y), repeats)

    sk_model, our_model, torch_model = sklearn_epoch(x, y), mlplab_epoch(x, y), bare_epoch(batches)
    accuracy = (f"test accuracy: mlplab {our_model.score(x_check, y_check):.3f}, "
                f"sklearn {sk_model.score(x_check, y_check):.3f}")
    rows = [Row("train 1M x 20, 20-64-64-1, Adam", name, "M samples/s", value, ours, better="higher",
                target=">= 2.2 M/s" if name == "bare fused-Adam loop" else "", note=note)
            for name, value, note in (("DataLoader(TensorDataset)", loader, ""), ("sklearn MLPClassifier", sklearn,
                                      accuracy), ("bare fused-Adam loop", bare, "pre-sliced batches: the floor"))]

    x_tensor = torch.from_numpy(x_check if size == "tiny" else x)
    rows_per_second = len(x_tensor) / 1e6

    def plain():
        with torch.no_grad():
            torch_model(x_tensor)

    predict_sklearn = rows_per_second / median_time(lambda: sk_model.predict_proba(x_tensor.numpy()), repeats)
    predict_plain = rows_per_second / median_time(plain, repeats)
    predict_ours = rows_per_second / median_time(lambda: our_model.model_.predict_proba(x_tensor.numpy()), repeats)
    rows += [Row("inference 1M rows", "sklearn predict_proba", "M rows/s", predict_sklearn, predict_ours,
                 better="higher", target=">= 10 M rows/s"),
             Row("inference 1M rows", "plain model(x), one chunk", "M rows/s", predict_plain, predict_ours,
                 better="higher")]
    if size != "tiny":  # a fresh process: not for the test suite's smoke run
        rows.append(memory_row(n_rows))
    return rows


def memory_row(n_rows: int) -> Row:
    """Peak resident memory of a fresh process while it makes the data and trains with mlplab, above
    its resident memory once torch, scikit-learn and mlplab are imported (the baseline)."""
    result = subprocess.run([sys.executable, "-m", "mlplab.bench.large", str(n_rows)], capture_output=True,
                            text=True, check=True)
    values = json.loads(result.stdout.strip().splitlines()[-1])
    extra = (values["peak"] - values["baseline"]) / values["data_bytes"]
    return Row("peak memory, training run", "torch baseline + data", "x data bytes", None, extra,
               target="<= 3x", note=f"baseline {values['baseline'] / 2**20:.0f} MiB, peak "
                                    f"{values['peak'] / 2**20:.0f} MiB, data {values['data_bytes'] / 2**20:.0f} MiB")


def _status(field: str) -> int:
    """A VmRSS/VmHWM line of /proc/self/status, in bytes (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


if __name__ == "__main__":  # the memory probe, in its own process
    mlplab_epoch(*make_data(2_000))  # imports and first-use allocations belong to the baseline
    baseline = _status("VmRSS")
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # reset the peak (VmHWM) to the current size
    x_data, y_data = make_data(int(sys.argv[1]))
    mlplab_epoch(x_data, y_data)
    print(json.dumps({"baseline": baseline, "peak": _status("VmHWM"), "data_bytes": x_data.nbytes + y_data.nbytes}))
