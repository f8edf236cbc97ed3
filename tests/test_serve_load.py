"""The serving load test (mlplab.bench.serve) run bounded, and the fast paths it led to answering exactly
as the checked path does. Speed is never asserted here: only that every answer is right."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from mlplab.web import create_app  # noqa: E402


def _numeric_model(n_features: int = 3):
    """A binary model of numbers only, fixed weights and standard scaling; nothing trained."""
    import torch

    from mlplab.model import MLP
    from mlplab.preprocess import Preprocessor
    from mlplab.run import TrainedModel

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    columns = {f"x{i}": rng.normal(size=50) * (i + 1) for i in range(1, n_features + 1)}
    preprocessor = Preprocessor.fit(columns, scale="standard")
    return TrainedModel(MLP(n_features, [4], 1).eval(), "binary", ["no", "yes"], preprocessor, {})


@pytest.fixture(scope="module")
def numeric():
    model = _numeric_model()
    with TestClient(create_app({"num": model})) as client:
        yield model, client


def test_numeric_rows_answer_alike_in_every_form(numeric):
    model, client = numeric
    x = np.random.default_rng(1).normal(size=(40, 3)).round(4)
    x[0] = [1, -2, 0]  # integers are numbers too
    rows = x.tolist()
    rows[0] = [1, -2, 0]
    as_lists = client.post("/v1/models/num/predict", json={"rows": rows})
    as_objects = client.post("/v1/models/num/predict",
                             json={"rows": [dict(zip(["x1", "x2", "x3"], row)) for row in rows]})
    as_csv = client.post("/v1/models/num/predict", headers={"content-type": "text/csv"},
                         content="x1,x2,x3\n" + "".join(",".join(map(str, row)) + "\n" for row in rows))
    assert as_lists.status_code == as_objects.status_code == as_csv.status_code == 200
    assert as_lists.json() == as_objects.json() == as_csv.json()
    answer = as_lists.json()
    assert answer["predictions"] == model.predict(x).tolist()
    np.testing.assert_allclose(answer["probabilities"], model.predict_proba(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize(("cell", "words"), [
    ("true", "row 2: feature 'x2' must be a finite number, got True"),
    ('"1"', "row 2: feature 'x2' must be a finite number, got '1'"),
    ("null", "row 2: feature 'x2' must be a finite number, got None"),
    ("NaN", "row 2: feature 'x2' must be a finite number, got nan"),
    ("1e999", "row 2: feature 'x2' must be a finite number, got inf"),
    ("1" + "0" * 400, "row 2: feature 'x2' must be a finite number"),
])
def test_a_bad_cell_in_list_rows_is_named_as_before(numeric, cell, words):
    _, client = numeric
    body = f'{{"rows": [[0, 1, 2], [0, {cell}, 2]]}}'
    response = client.post("/v1/models/num/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert words in response.json()["detail"]


def test_the_server_gives_a_tiny_network_one_torch_thread(numeric, monkeypatch):
    from mlplab.web.serve import inference_threads

    model, _ = numeric
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    assert inference_threads({"num": model}, 10_000) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert inference_threads({"num": model}, 10_000) is None  # the environment chose: left to torch


@pytest.mark.slow
def test_load_harness_bounded(tmp_path):
    """Both servers for real on 127.0.0.1, 20 requests per phase: every answer 200 and the model's."""
    from mlplab.bench.serve import ROW_COUNTS, format_report, load_test

    report = load_test("tiny", requests=20, seconds=20.0, threads=2, repeats=1, folder=tmp_path)
    assert report["settings"]["host"] == "127.0.0.1"
    results = report["results"]
    assert sorted((r["server"], r["rows"]) for r in results) == sorted(
        (server, rows) for server in ("floor", "mlplab") for rows in ROW_COUNTS)
    for result in results:
        assert {"p50_ms", "p99_ms", "requests_per_s", "requests", "statuses", "all_ok", "problem"} <= set(result)
        assert result["statuses"] == {200: result["requests"]}, result
        assert result["all_ok"] and result["problem"] is None, result
        assert 0 < result["requests"] <= 20  # bounded: the threads share one count of requests
        assert result["p50_ms"] > 0 and result["p99_ms"] >= result["p50_ms"] and result["requests_per_s"] > 0
    assert "mlplab/floor" in format_report(report)
    json.dumps(report, default=str)  # plain data
