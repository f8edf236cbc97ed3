"""The prediction API in-process (FastAPI's TestClient): answers, and a 4xx for each bad request."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

import mlplab  # noqa: E402
from mlplab.web import create_app  # noqa: E402
from mlplab.web.app import Limits  # noqa: E402


@pytest.fixture(scope="module")
def colours(tmp_path_factory):
    """A multiclass model with a categorical feature, string labels and standard scaling."""
    folder = tmp_path_factory.mktemp("colours")
    rng = np.random.default_rng(0)
    n = 120
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    label = np.where(x1 > 0.3, "high", np.where(x1 < -0.3, "low", "mid"))
    lines = ["x1,x2,colour,label", *(f"{a:.4f},{b:.4f},{c},{d}" for a, b, c, d in zip(x1, x2, colour, label))]
    (folder / "colours.csv").write_text("\n".join(lines) + "\n")
    config = mlplab.Config.from_dict({"data": {"path": str(folder / "colours.csv"), "target": "label",
                                               "scale": "standard"},
                                      "model": {"hidden_sizes": [8]},
                                      "training": {"epochs": 150, "optimizer": "adam", "learning_rate": 0.05}})
    return mlplab.train(config, out=folder / "run").model


@pytest.fixture(scope="module")
def client(tutorial_run, colours):
    app = create_app({"xor": mlplab.load(tutorial_run.path), "colours": colours}, limits=Limits(max_rows=50,
                                                                                               max_body_bytes=20_000))
    with TestClient(app) as test_client:
        yield test_client


def test_health_and_listing(client):
    assert client.get("/healthz").json() == {"status": "ok", "models": ["xor", "colours"]}
    listed = client.get("/v1/models").json()["models"]
    assert [model["name"] for model in listed] == ["xor", "colours"]
    info = client.get("/v1/models/colours").json()
    assert info["task"] == "multiclass" and info["classes"] == ["high", "low", "mid"]
    assert info["features"][2] == {"name": "colour", "type": "categorical", "categories": ["blue", "green", "red"]}
    assert info["config"]["model"]["hidden_sizes"] == [8] and "accuracy" in info["metrics"]["test"]


def test_predict_json_objects_lists_and_csv_agree_with_the_library(client, colours):
    rows = [{"x1": 1.2, "x2": 0.0, "colour": "red"}, {"x1": -1.0, "x2": 2, "colour": "blue"}]
    by_name = client.post("/v1/models/colours/predict", json={"rows": rows}).json()
    in_order = client.post("/v1/models/colours/predict", json={"rows": [list(r.values()) for r in rows]}).json()
    csv_body = "x1,x2,colour\n1.2,0.0,red\n-1.0,2,blue\n"
    as_csv = client.post("/v1/models/colours/predict", content=csv_body, headers={"content-type": "text/csv"}).json()
    assert by_name == in_order == as_csv
    table = {"x1": [1.2, -1.0], "x2": [0.0, 2.0], "colour": ["red", "blue"]}
    assert by_name["predictions"] == colours.predict(table).tolist() == ["high", "low"]
    np.testing.assert_allclose(by_name["probabilities"], colours.predict_proba(table), rtol=0, atol=1e-12)
    assert by_name["classes"] == ["high", "low", "mid"]


def test_tutorial_model_labels_are_integers(client):
    answer = client.post("/v1/models/xor/predict", json={"rows": [[-1, 1], [1, 1]]}).json()
    assert answer["predictions"] == [1, 0] and answer["classes"] == [0, 1]


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"rows": [{"x1": 1.0, "x2": 0.0}]}, 422, "'colour' is missing"),
    ({"rows": [{"x1": 1.0, "x2": 0.0, "colour": "red", "x3": 1}]}, 422, "'x3' is not a feature"),
    ({"rows": [{"x1": "1.0", "x2": 0.0, "colour": "red"}]}, 422, "'x1' must be a finite number"),
    ({"rows": [{"x1": True, "x2": 0.0, "colour": "red"}]}, 422, "'x1' must be a finite number"),
    ({"rows": [{"x1": 1.0, "x2": 0.0, "colour": "pink"}]}, 422, "'pink' is a category of 'colour' unseen"),
    ({"rows": [{"x1": 1.0, "x2": 0.0, "colour": 3}]}, 422, "3 is a category of 'colour' unseen"),
    ({"rows": [[1.0, 0.0]]}, 422, "row 1 has 2 value(s)"),
    ({"rows": []}, 422, "not a valid prediction request"),
    ({"data": []}, 422, "not a valid prediction request"),
    ({"rows": [[1.0, 0.0, "red"]] * 51}, 413, "limit is 50"),
])
def test_bad_rows_get_a_clear_4xx(client, body, status, words):
    response = client.post("/v1/models/colours/predict", json=body)
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]


def test_nan_infinity_and_other_bodies(client):
    for literal in ("NaN", "Infinity", "-Infinity", "1e999"):
        body = f'{{"rows": [[{literal}, 0.0, "red"]]}}'
        response = client.post("/v1/models/colours/predict", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422, (literal, response.text)
    csv_nan = client.post("/v1/models/colours/predict", content="x1,x2,colour\nnan,0,red\n",
                          headers={"content-type": "text/csv"})
    assert csv_nan.status_code == 422 and "finite number" in csv_nan.json()["detail"]
    assert client.post("/v1/models/colours/predict", content=b"{not json",
                       headers={"content-type": "application/json"}).status_code == 422
    assert client.post("/v1/models/colours/predict", content=b"\xff\xfe",
                       headers={"content-type": "text/csv"}).status_code == 422
    response = client.post("/v1/models/colours/predict", content=b"x", headers={"content-type": "image/png"})
    assert response.status_code == 415
    big = client.post("/v1/models/colours/predict", content=b" " * 20_001, headers={"content-type": "application/json"})
    assert big.status_code == 413 and "limit" in big.json()["detail"]


def test_a_name_is_never_a_path(client):
    for name in ("..%2F..%2Fetc%2Fpasswd", "%2Ftmp%2Fx", "..", "tutorial"):
        assert client.get(f"/v1/models/{name}").status_code == 404
    response = client.post("/v1/models/run.json/predict", json={"rows": [[1, 1]]})
    assert response.status_code == 404
    assert json.loads(response.text)["detail"] == "no model named 'run.json' is served; served: xor, colours"


def test_bad_model_names_are_refused_at_start(tutorial_run):
    with pytest.raises(mlplab.MlplabError, match="not allowed"):
        create_app({"../x": mlplab.load(tutorial_run.path)})


def test_web_package_is_lazy_and_names_its_extra(monkeypatch):
    import subprocess
    import sys

    code = "import mlplab.web, sys; print('fastapi' in sys.modules, 'torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.split() == ["False", "False"]
    import importlib.util

    import mlplab.web

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    with pytest.raises(mlplab.MlplabError, match=r"needs uvicorn: pip install 'mlplab\[web\]'"):
        mlplab.web.require_web()
