"""Sweeps: K models trained as one batched computation, beside the same models trained one by one.

1. K = 256 tutorial-size models (2-5-1 on 80 xor-blobs points, full-batch SGD, 8 learning rates x 32 seeds,
   so every seed has its own data), 2000 epochs: ``mlplab.run_sweep`` end to end (data, training with a
   test evaluation every epoch, final metrics) against K sequential ``mlplab.train`` runs on the fast path
   (the same work; a subset is timed and multiplied up, as the note says) and against a ``torch.func.vmap``
   reference (vmap over ``grad`` of ``functional_call``, plain SGD, training only), in µs per model-epoch.
2. K = 64 models of 20-64-64-1 on 100k rows (8 learning rates x 8 weight decays), mini-batch Adam (batch
   1024): the sweep against sequential ``mlplab.train`` (one model timed, multiplied by K).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ..config import Config
from . import Row

TUTORIAL = {"tiny": (16, 20, 4), "quick": (256, 200, 16), "full": (256, 2000, 16)}  # K, epochs, timed alone
LARGE = {"tiny": (4, 2_000, 1), "quick": (64, 100_000, 1), "full": (64, 100_000, 2)}  # K, rows, epochs


def _tutorial_grid(k: int) -> dict[str, list]:
    rates = [0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5]
    n_rates = min(8, k)
    return {"training.learning_rate": rates[:n_rates], "seed": list(range(k // n_rates))}


def vmap_reference(k: int, epochs: int) -> float:
    """Seconds for ``epochs`` of K 2-5-1 networks by torch.func: vmap(grad(loss of functional_call))."""
    from torch.func import functional_call, grad, stack_module_state, vmap

    from ..data import generate
    from ..model import MLP

    data = [generate("xor-blobs", 80, 20, seed=seed) for seed in range(k)]
    x = torch.stack([torch.from_numpy(d[0]) for d in data]).float()
    y = torch.stack([torch.from_numpy(d[1]) for d in data]).float()
    models = []
    for seed in range(k):
        torch.manual_seed(seed)
        models.append(MLP(2, [5], 1))
    params, _ = stack_module_state(models)
    base = models[0]

    def loss(p, xb, yb):
        logits = functional_call(base, p, (xb,))
        return torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], yb)

    step = vmap(grad(loss))
    lr = torch.full((k,), 0.03)
    started = time.perf_counter()
    for _ in range(epochs):
        grads = step(params, x, y)
        for name in params:
            params[name] = params[name] - lr.view(-1, *[1] * (params[name].dim() - 1)) * grads[name]
    return time.perf_counter() - started


def run(size: str) -> list[Row]:
    import mlplab

    k, epochs, alone = TUTORIAL[size]
    grid = _tutorial_grid(k)
    base = Config.from_dict({"training": {"epochs": epochs}})
    started = time.perf_counter()
    result = mlplab.run_sweep(base, grid, save=False)
    batched = (time.perf_counter() - started) / (k * epochs) * 1e6
    settings = [(lr, seed) for lr in grid["training.learning_rate"] for seed in grid["seed"]][:: max(1, k // alone)]
    started = time.perf_counter()
    for lr, seed in settings:
        mlplab.train(Config.from_dict({"seed": seed, "training": {"epochs": epochs, "learning_rate": lr}}),
                     save=False)
    sequential = (time.perf_counter() - started) / (len(settings) * epochs) * 1e6
    vmap_epochs = max(epochs // 10, 10)
    vmapped = vmap_reference(k, vmap_epochs) / (k * vmap_epochs) * 1e6
    task = f"sweep: {k} tutorial 2-5-1 models, {epochs} epochs"
    rows = [Row(task, f"{k} sequential mlplab train (fast path; {len(settings)} timed, x{k / len(settings):g})",
                "us/model-epoch", sequential, batched, target="<= 2 us/model-epoch",
                note=f"best {result.metric} {result.rows[result.best][result.metric]:.4f}"),
            Row(task, f"torch.func.vmap(grad) reference ({vmap_epochs} epochs, training only)", "us/model-epoch",
                vmapped, batched)]
    return rows + _large(size)


def _large(size: str) -> list[Row]:
    import mlplab

    from .large import make_data

    k, n_rows, epochs = LARGE[size]
    x, y = make_data(n_rows)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rows.npz"
        np.savez(path, X=x, y=y.astype(np.int64))
        base = Config.from_dict({"data": {"path": str(path)}, "model": {"hidden_sizes": [64, 64]},
                                 "training": {"optimizer": "adam", "batch_size": 1024, "epochs": epochs}})
        side = max(1, int(round(k ** 0.5)))
        grid = {"training.learning_rate": list(np.geomspace(1e-4, 1e-2, side)),
                "training.weight_decay": [0.0] + list(np.geomspace(1e-5, 1e-2, k // side - 1))}
        started = time.perf_counter()
        mlplab.run_sweep(base, grid, save=False)
        batched = time.perf_counter() - started
        started = time.perf_counter()
        mlplab.train(base, save=False)
        sequential = (time.perf_counter() - started) * k
    task = f"sweep: {k} models 20-64-64-1, {n_rows // 1000}k rows, Adam batch 1024, {epochs} epoch(s)"
    return [Row(task, f"{k} sequential mlplab train (1 timed, x{k})", "s", sequential, batched)]
