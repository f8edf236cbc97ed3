"""``mlplab serve`` under load on loopback, beside the floor: a bare FastAPI endpoint calling torch.

Two servers run at once on 127.0.0.1, each a fresh process started with the same uvicorn settings
(one worker, ``log_level="info"``, output discarded) and the same torch threads (what ``mlplab serve``
chooses for the model, :func:`mlplab.web.serve.inference_threads`): ``mlplab serve RUN`` and :data:`FLOOR`, a
FastAPI app with one ``POST`` endpoint that parses the JSON body, runs the run's own torch module on it
and writes the same answer (labels and class probabilities) with ``json.dumps``: no row checks, no
pydantic, no preprocessing. The difference between the two is what mlplab's serving layer costs.

The model is a 20-64-64-1 binary classifier (trained for one epoch; scaling ``none``, so the floor's
plain forward pass is the whole model). Both servers get the same bytes: ``{"rows": [[20 numbers],
...]}`` with 1 row and with 1,000 rows. The client is httpx, one ``httpx.Client`` (kept-alive
connection) per thread; each phase stops after ``requests`` requests or ``seconds`` seconds, whichever
comes first, and phases alternate floor / mlplab so that drift on a shared machine hits both alike.

Every response is checked: status 200, and its body equal to the first one, whose predictions are
checked against ``mlplab.load(run).predict`` of the same rows (the floor's probabilities, computed in
float32, to 1e-5). :func:`load_test` returns the report as plain data; :func:`run` gives the benchmark
table rows. Speed is never asserted in tests.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import Row

__all__ = ["FLOOR", "load_test", "prepare_run", "run"]

N_FEATURES = 20
ROW_COUNTS = (1, 1_000)
MODEL_NAME = "load"
# requests per phase, seconds per phase (whichever first), phases per target and payload, client threads
SIZES = {"tiny": (20, 5.0, 1, 2), "quick": (400, 4.0, 2, 4), "full": (3_000, 15.0, 3, 4)}
TARGET_RATIO = 1.5  # issue 13: single-row p50 within 1.5x of the floor

FLOOR = '''
import json, sys
import numpy as np
import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response

import mlplab

run, port, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if threads != "default":
    torch.set_num_threads(int(threads))
trained = mlplab.load(run)
module = trained.module.eval()
classes = trained.classes
app = FastAPI()

@app.get("/healthz")
async def healthz():
    return {"status": "ok"}

@app.post("/predict")
async def predict(request: Request):
    rows = json.loads(await request.body())["rows"]
    with torch.inference_mode():
        p = torch.sigmoid(module(torch.from_numpy(np.asarray(rows, dtype=np.float32)))[:, 0].double()).tolist()
    return Response(json.dumps({"model": "load", "task": "binary",
                                "predictions": [classes[int(v >= 0.5)] for v in p], "classes": classes,
                                "probabilities": [[1.0 - v, v] for v in p]}), media_type="application/json")

uvicorn.run(app, host="127.0.0.1", port=port, log_level="info")
'''


def prepare_run(folder: Path) -> Path:
    """Train the benchmark's model (one epoch on 2,000 random rows) into ``folder/MODEL_NAME``."""
    import mlplab

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2_000, N_FEATURES))
    y = (x[:, 0] * x[:, 1] > 0).astype(int)
    names = [f"x{i}" for i in range(1, N_FEATURES + 1)]
    lines = [",".join([*names, "y"])] + [",".join([*(f"{v:.6f}" for v in row), str(label)])
                                         for row, label in zip(x, y)]
    (folder / "train.csv").write_text("\n".join(lines) + "\n")
    config = mlplab.Config.from_dict({"seed": 0, "data": {"path": str(folder / "train.csv"), "target": "y",
                                                                "scale": "none"},  # the floor runs the bare network
                                      "model": {"hidden_sizes": [64, 64]},
                                      "training": {"epochs": 1, "optimizer": "adam", "learning_rate": 0.01}})
    out = folder / MODEL_NAME
    mlplab.train(config, out=out, force=True)
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(arguments: list[str], port: int, cwd: Path) -> subprocess.Popen:
    """A server process on 127.0.0.1:port, its output discarded; returns once /healthz answers."""
    import httpx

    process = subprocess.Popen([sys.executable, *arguments], cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server {' '.join(arguments[:3])} exited: "
                               f"{process.stderr.read().decode(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0).status_code == 200:
                # uvicorn logs every request to stderr: drain it so the pipe never fills and blocks the server
                threading.Thread(target=process.stderr.read, daemon=True).start()
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server {' '.join(arguments[:3])} did not answer /healthz in 120 s")


def _phase(url: str, body: bytes, requests: int, seconds: float, threads: int) -> dict[str, Any]:
    """``requests`` POSTs of ``body`` (or as many as ``seconds`` allow) from ``threads`` threads."""
    import httpx

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    bodies: dict[bytes, int] = {}  # distinct response bodies and how often each came back
    lock = threading.Lock()
    issued = iter(range(requests))
    headers = {"content-type": "application/json"}

    def worker() -> None:
        with httpx.Client(timeout=30.0) as client:
            client.post(url, content=body, headers=headers)  # connect and warm up, untimed
            while time.perf_counter() < stop:
                with lock:
                    if next(issued, None) is None:
                        return
                started = time.perf_counter()
                response = client.post(url, content=body, headers=headers)
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    bodies[response.content] = bodies.get(response.content, 0) + 1

    stop = time.perf_counter() + 3600.0
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    began = time.perf_counter()
    stop = began + seconds
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    wall = time.perf_counter() - began
    return {"latencies": latencies, "statuses": statuses, "bodies": bodies, "wall": wall}


def _check(body: bytes, expected: dict[str, Any]) -> str | None:
    """None when a response body gives the expected labels and probabilities, else what differs."""
    answer = json.loads(body)
    if answer.get("predictions") != expected["predictions"]:
        return "predictions differ from the model's"
    probabilities = np.asarray(answer.get("probabilities"), dtype=float)
    if probabilities.shape != expected["probabilities"].shape or \
            not np.allclose(probabilities, expected["probabilities"], atol=1e-5, rtol=0):
        return "probabilities differ from the model's"
    return None


def load_test(size: str = "quick", *, requests: int | None = None, seconds: float | None = None,
              threads: int | None = None, repeats: int | None = None, folder: str | Path | None = None,
              echo: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Run the load test; returns ``{"settings": ..., "results": [...]}``, one result per server and
    payload: ``server`` ("mlplab" or "floor"), ``rows`` (per request), ``requests``, ``p50_ms``,
    ``p99_ms``, ``requests_per_s``, ``statuses`` ({code: count}), ``all_ok`` (every status 200 and every
    body the model's answer) and ``problem`` (why not, or None)."""
    import mlplab

    default_requests, default_seconds, default_repeats, default_threads = SIZES[size]
    requests, seconds = requests or default_requests, seconds or default_seconds
    threads, repeats = threads or default_threads, repeats or default_repeats
    with tempfile.TemporaryDirectory() as scratch:
        where = Path(folder) if folder is not None else Path(scratch)
        where.mkdir(parents=True, exist_ok=True)
        run_dir = prepare_run(where)
        model = mlplab.load(run_dir)
        from ..web.serve import inference_threads

        torch_threads = inference_threads({MODEL_NAME: model}, 10_000)  # what mlplab serve chooses
        ports = {"mlplab": _free_port(), "floor": _free_port()}
        commands = {"mlplab": ["-m", "mlplab", "serve", str(run_dir), "--port", str(ports["mlplab"])],
                    "floor": ["-c", FLOOR, str(run_dir), str(ports["floor"]), str(torch_threads or "default")]}
        urls = {"mlplab": f"http://127.0.0.1:{ports['mlplab']}/v1/models/{MODEL_NAME}/predict",
                "floor": f"http://127.0.0.1:{ports['floor']}/predict"}
        servers: dict[str, subprocess.Popen] = {}
        try:
            for name, arguments in commands.items():
                servers[name] = _start(arguments, ports[name], where)
            results = []
            rng = np.random.default_rng(1)
            for n_rows in ROW_COUNTS:
                x = np.round(rng.standard_normal((n_rows, N_FEATURES)), 6)
                body = json.dumps({"rows": x.tolist()}).encode()
                expected = {"predictions": model.predict(x).tolist(), "probabilities": model.predict_proba(x)}
                phases: dict[str, list[dict[str, Any]]] = {"floor": [], "mlplab": []}
                for _ in range(repeats):
                    for name in ("floor", "mlplab"):  # interleaved: drift on a busy machine hits both
                        echo(f"  {name}: {n_rows} row(s) per request, up to {requests} requests / {seconds:g} s")
                        phases[name].append(_phase(urls[name], body, requests, seconds, threads))
                for name, runs in phases.items():
                    results.append(_summarise(name, n_rows, runs, expected))
        finally:
            for process in servers.values():
                process.terminate()
            for process in servers.values():
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
    settings = {"host": "127.0.0.1", "model": f"{N_FEATURES}-64-64-1 binary", "threads": threads,
                "requests_per_phase": requests, "seconds_per_phase": seconds, "phases": repeats,
                "uvicorn": {"workers": 1, "log_level": "info"}, "torch_threads": torch_threads or "default"}
    return {"settings": settings, "results": results}


def _summarise(name: str, n_rows: int, runs: list[dict[str, Any]], expected: dict[str, Any]) -> dict[str, Any]:
    latencies = sorted(latency for run in runs for latency in run["latencies"])
    statuses: dict[int, int] = {}
    bodies: dict[bytes, int] = {}
    for run in runs:
        for code, count in run["statuses"].items():
            statuses[code] = statuses.get(code, 0) + count
        for body, count in run["bodies"].items():
            bodies[body] = bodies.get(body, 0) + count
    problem = None
    if set(statuses) != {200}:
        problem = f"statuses {statuses}"
    elif not latencies:
        problem = "no request completed"
    else:
        problem = next(filter(None, (_check(body, expected) for body in bodies)), None)
    return {"server": name, "rows": n_rows, "requests": len(latencies),
            "p50_ms": 1e3 * _quantile(latencies, 0.50), "p99_ms": 1e3 * _quantile(latencies, 0.99),
            "requests_per_s": len(latencies) / sum(run["wall"] for run in runs),
            "statuses": statuses, "distinct_bodies": len(bodies), "all_ok": problem is None, "problem": problem}


def _quantile(values: list[float], q: float) -> float:
    """The q-quantile of sorted ``values`` (linear interpolation); NaN when there are none."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1] if q < 1 else values[-1]


def format_report(report: dict[str, Any]) -> str:
    """The side-by-side table: p50, p99 and requests/s of mlplab and the floor, and their ratios."""
    by = {(r["server"], r["rows"]): r for r in report["results"]}
    header = ["rows/request", "server", "requests", "p50 ms", "p99 ms", "req/s", "ok"]
    lines = []
    for n_rows in ROW_COUNTS:
        for name in ("floor", "mlplab"):
            r = by[(name, n_rows)]
            lines.append([f"{n_rows:,}", name, str(r["requests"]), f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
                          f"{r['requests_per_s']:.0f}", "yes" if r["all_ok"] else f"NO: {r['problem']}"])
        floor, ours = by[("floor", n_rows)], by[("mlplab", n_rows)]
        lines.append([f"{n_rows:,}", "mlplab/floor", "", f"{ours['p50_ms'] / floor['p50_ms']:.2f}x",
                      f"{ours['p99_ms'] / floor['p99_ms']:.2f}x",
                      f"{ours['requests_per_s'] / floor['requests_per_s']:.2f}x", ""])
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    settings = report["settings"]
    title = (f"mlplab serve vs bare FastAPI + torch (the floor), 127.0.0.1, {settings['model']}, "
             f"{settings['threads']} client threads, {settings['phases']} phase(s) of up to "
             f"{settings['requests_per_phase']} requests / {settings['seconds_per_phase']:g} s each")
    return "\n".join([title, *("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
                               for line in [header, *lines])])


def run(size: str) -> list[Row]:
    report = load_test(size, echo=print)
    print(format_report(report))
    bad = [f"{r['server']} {r['rows']} rows: {r['problem']}" for r in report["results"] if not r["all_ok"]]
    if bad:
        raise RuntimeError("the load test got wrong answers: " + "; ".join(bad))
    by = {(r["server"], r["rows"]): r for r in report["results"]}
    rows = []
    for n_rows in ROW_COUNTS:
        floor, ours = by[("floor", n_rows)], by[("mlplab", n_rows)]
        label = f"`mlplab serve` POST predict, {n_rows:,} row(s)"
        target = f">= {1 / TARGET_RATIO:.2f}x (p50 within {TARGET_RATIO}x of the floor)" if n_rows == 1 else ""
        rows += [Row(label + " p50", "bare FastAPI + torch", "ms", floor["p50_ms"], ours["p50_ms"], "lower", target),
                 Row(label + " p99", "bare FastAPI + torch", "ms", floor["p99_ms"], ours["p99_ms"], "lower"),
                 Row(label + " throughput", "bare FastAPI + torch", "req/s", floor["requests_per_s"],
                     ours["requests_per_s"], "higher")]
    return rows
