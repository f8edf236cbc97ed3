"""The playground's HTTP and WebSocket API (FastAPI's TestClient), each endpoint with good and bad input.

References: the tutorial run's numbers (mlplab.train with the same config), the library's own explain,
and the run folder read back by mlplab.load and by the tutorial's NeuralNet.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

import mlplab  # noqa: E402
from mlplab.explain import explain  # noqa: E402
from mlplab.web.app import create_app  # noqa: E402

API = "/api/playground"


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(playground=True)) as test_client:
        yield test_client


def new_session(client, **settings) -> str:
    response = client.post(f"{API}/sessions", json=settings)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def train_until(ws, epoch: int, speed: int = 50) -> dict:
    """Play until a frame at ``epoch`` or later arrives (acknowledging each), then pause."""
    ws.send_text(json.dumps({"type": "speed", "value": speed}))
    ws.send_text(json.dumps({"type": "play"}))
    while True:
        message = json.loads(ws.receive_text())
        if message["type"] == "frame":
            ws.send_text('{"type": "ack"}')
            if message["epoch"] >= epoch:
                ws.send_text('{"type": "pause"}')
                return message


def first_messages(ws) -> tuple[dict, dict]:
    data, frame = json.loads(ws.receive_text()), json.loads(ws.receive_text())
    assert (data["type"], frame["type"]) == ("data", "frame")
    return data, frame


def test_datasets_lists_every_generator_and_the_caps(client):
    body = client.get(f"{API}/datasets").json()
    assert [d["name"] for d in body["datasets"]] == list(mlplab.data.GENERATORS)
    assert body["limits"]["hidden_layers"] >= 8 and body["limits"]["units"] >= 64
    assert body["inputs"] == ["x1", "x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)"]


@pytest.fixture(scope="module")
def trained(client):
    """The tutorial's defaults trained 200 epochs through the page's API; the session stays paused."""
    session = new_session(client)
    with client.websocket_connect(f"{API}/sessions/{session}/stream") as ws:
        data, first = first_messages(ws)
        last = train_until(ws, 200)
        explained = client.post(f"{API}/sessions/{session}/explain", json={"u": -1.0, "v": 1.0}).json()
        archive = client.get(f"{API}/sessions/{session}/run.zip")
        script = client.get(f"{API}/sessions/{session}/export.py")
    return {"data": data, "first": first, "last": last, "explained": explained, "zip": archive, "script": script}


def test_a_session_trains_the_tutorial_run_epoch_for_epoch(trained):
    data, first, last = trained["data"], trained["first"], trained["last"]
    assert data["task"] == "binary" and data["sizes"] == [2, 5, 1] and len(data["points"]["train"]["u"]) == 80
    # the same numbers as `mlplab train` (README: "Before training, test loss is 0.719033")
    assert first["epoch"] == 0 and round(first["metrics"]["test_loss"], 6) == 0.719033
    reference = mlplab.train(mlplab.Config.from_dict({"training": {"epochs": last["epoch"]}}), save=False)
    assert last["metrics"]["train_loss"] == pytest.approx(reference.history[-1]["train_loss"], rel=1e-9)
    assert last["metrics"]["test_loss"] == pytest.approx(reference.history[-1]["test_loss"], rel=1e-6)
    image = lambda frame: np.frombuffer(base64.b64decode(frame["boundary"]["p"]), np.uint8).astype(int)  # noqa: E731
    assert image(last).shape == (100 * 100,) and np.abs(image(last) - image(first)).max() > 30
    assert len(last["units"]["layers"]) == 1 and len(last["weights"]) == 2


def test_explain_and_the_run_folder_agree_with_the_library(trained, tmp_path):
    archive = trained["zip"]
    assert archive.status_code == 200 and archive.headers["content-type"] == "application/zip"
    zipfile.ZipFile(io.BytesIO(archive.content)).extractall(tmp_path)
    (folder,) = tmp_path.iterdir()
    assert {p.name for p in folder.iterdir()} >= {"checkpoint.pt", "model.pt", "history.json", "config.toml"}
    model = mlplab.load(folder)
    reference = explain(model, [-1.0, 1.0])
    explained = trained["explained"]
    assert explained["output"][0] == pytest.approx(model.predict_proba([[-1.0, 1.0]])[0, 1], rel=1e-6)
    assert explained["loss"] == pytest.approx(reference.loss, rel=1e-9)
    for layer, (dw, db) in zip(explained["gradients"], reference.gradients):
        np.testing.assert_allclose(layer["W"], dw, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(layer["b"], db, rtol=1e-9, atol=1e-12)
    assert explained["autograd_difference"] < 1e-6
    # the tutorial's own NeuralNet loads model.pt
    from conftest import NeuralNet

    net = NeuralNet(2, 5)
    net.load_state_dict(torch.load(folder / "model.pt", weights_only=True))
    assert float(net(torch.tensor([[-1.0, 1.0]]))[0, 0]) == pytest.approx(explained["output"][0], rel=1e-5)
    history = json.loads((folder / "history.json").read_text())
    assert len(history) == trained["last"]["epoch"] and "test_loss" in history[-1]


def test_the_exported_script_reproduces_the_final_loss(trained, tmp_path):
    script = trained["script"]
    assert script.status_code == 200 and "class NeuralNet(nn.Module)" in script.text
    path = tmp_path / "run.py"
    path.write_text(script.text)
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300, check=True).stdout
    final = float(out.strip().splitlines()[-1].split("train loss ")[1].split()[0])
    assert final == pytest.approx(trained["last"]["metrics"]["train_loss"], abs=2e-6)


@pytest.mark.parametrize("settings, status, words", [
    ({"dataset": "nope"}, 422, "dataset"),
    ({"hidden": [0]}, 422, "1 to 128 units"),
    ({"hidden": [10000]}, 422, "1 to 128 units"),
    ({"hidden": [4] * 11}, 422, "hidden"),
    ({"lr": -1}, 422, "lr"),
    ({"inputs": []}, 422, "inputs"),
    ({"surprise": 1}, 422, "surprise"),
    ({"dataset": "upload"}, 404, "upload it again"),
    ({"dataset": "linear", "added": [{"u": 0, "v": 0, "label": 1}]}, 400, "classification data only"),
])
def test_bad_settings_get_a_4xx_naming_the_problem(client, settings, status, words):
    response = client.post(f"{API}/sessions", json=settings)
    assert response.status_code == status and words in response.json()["detail"]
    assert client.get(f"{API}/datasets").status_code == 200  # still serving


def test_malformed_json_and_unknown_sessions_are_clear_errors(client):
    response = client.post(f"{API}/sessions", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and "JSON" in response.json()["detail"]
    assert client.put(f"{API}/sessions/deadbeef", json={}).status_code == 404
    assert client.post(f"{API}/sessions/deadbeef/explain", json={"u": 0, "v": 0}).status_code == 404
    assert client.get(f"{API}/sessions/deadbeef/run.zip").status_code == 404
    assert client.get(f"{API}/sessions/deadbeef/export.py").status_code == 404
    assert client.delete(f"{API}/sessions/deadbeef").status_code == 404
    session = new_session(client)
    assert client.post(f"{API}/sessions/{session}/explain", json={"u": "left"}).status_code == 422
    assert client.delete(f"{API}/sessions/{session}").status_code == 204


CSV = "a,b,c,label\n" + "".join(
    f"{i % 7 - 3},{(i * 5) % 11 - 5},{i % 3},{'yes' if (i % 7 - 3) * ((i * 5) % 11 - 5) > 0 else 'no'}\n"
    for i in range(120))


def test_uploads_train_and_bad_files_are_refused(client):
    response = client.post(f"{API}/uploads", params={"name": "points.csv"}, content=CSV.encode())
    assert response.status_code == 200, response.text
    upload = response.json()
    assert upload["rows"] == 120 and [c["name"] for c in upload["columns"]] == ["a", "b", "c", "label"]
    assert client.get(f"{API}/uploads/{upload['id']}").json()["rows"] == 120
    session = new_session(client, dataset="upload", upload=upload["id"], target="label", draw=["a", "b"], use_all=True,
                          inputs=["x1", "x2", "x1*x2"])
    with client.websocket_connect(f"{API}/sessions/{session}/stream") as ws:
        data, _ = first_messages(ws)
        assert data["axes"] == ["a", "b"] and data["classes"] == ["no", "yes"]
        assert data["inputs"] == ["c", "a", "b", "a*b"]
        assert train_until(ws, 20, speed=10)["epoch"] >= 20
    ragged = client.post(f"{API}/uploads", params={"name": "bad.csv"}, content=b"a,b,c\n1,2\n3,4,5\n")
    assert ragged.status_code == 422 and "line 2" in ragged.json()["detail"]
    garbage = client.post(f"{API}/uploads", params={"name": "bad.csv"}, content=bytes(range(256)) * 4)
    assert 400 <= garbage.status_code < 500
    big = client.post(f"{API}/uploads", params={"name": "big.csv"}, content=b"a,b,c\n" + b"1,2,3\n" * 1_000_000)
    assert big.status_code == 413 and "MB" in big.json()["detail"]
    assert client.post(f"{API}/uploads", params={"name": "x.txt"}, content=b"a").status_code == 415
    assert client.get(f"{API}/datasets").status_code == 200


def test_other_tasks_edits_and_input_features_reach_the_page(client):
    session = new_session(client, dataset="blobs", classes=4, hidden=[8, 8], inputs=["x1", "x2", "x1^2"],
                          removed=[0, 1], added=[{"u": 0.5, "v": 0.5, "label": 3}])
    with client.websocket_connect(f"{API}/sessions/{session}/stream") as ws:
        data, frame = first_messages(ws)
        assert data["task"] == "multiclass" and data["classes"] == ["0", "1", "2", "3"]
        assert data["inputs"] == ["x1", "x2", "x1^2"] and data["sizes"] == [3, 8, 8, 4]
        assert len(data["points"]["train"]["u"]) == 80 - 2 + 1 and data["points"]["train"]["index"][-1] == -1
        assert "class" in frame["boundary"]
        ws.send_text('{"type": "fly"}')
        assert "unknown command" in json.loads(ws.receive_text())["message"]
        client.put(f"{API}/sessions/{session}", json={"dataset": "linear"})
        data, frame = first_messages(ws)
        assert data["task"] == "regression" and frame["boundary"]["high"] > frame["boundary"]["low"]


def test_closing_the_tab_stops_training_and_the_cap_is_enforced():
    with TestClient(create_app(playground=True)) as client:
        client.app.state.playground.max_sessions = 2
        first, second = new_session(client), new_session(client)
        refused = client.post(f"{API}/sessions", json={})
        assert refused.status_code == 429 and "close another tab" in refused.json()["detail"]
        session = client.app.state.playground.sessions[first]
        with client.websocket_connect(f"{API}/sessions/{first}/stream") as ws:
            train_until(ws, 5, speed=5)
            ws.send_text('{"type": "play"}')
        session.thread.join(timeout=5)  # the server saw the socket close: fit returns within an epoch
        assert not session.thread.is_alive() and first not in client.app.state.playground.sessions
        assert client.delete(f"{API}/sessions/{second}").status_code == 204
        assert new_session(client)


def test_the_playground_command_prints_its_address_and_serves_the_page():
    """The README's `mlplab playground`, on a free port; a taken or impossible port is one clear line."""
    import socket
    import urllib.request

    process = subprocess.Popen([sys.executable, "-m", "mlplab", "playground", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        url = line.split()[2]
        assert line.startswith("mlplab playground: http://127.0.0.1:") and url.endswith("/playground/")
        page = urllib.request.urlopen(url, timeout=30).read().decode()
        assert "<canvas id=\"boundary\"" in page and "static/app.js" in page
    finally:
        process.terminate()
        process.wait(timeout=30)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for args, words in ((["--port", str(port)], f"cannot listen on 127.0.0.1:{port}"),
                            (["--port", "70000"], "--port must be from 0 to 65535")):
            done = subprocess.run([sys.executable, "-m", "mlplab", "playground", *args], capture_output=True,
                                  text=True, timeout=120)
            assert done.returncode == 2 and done.stderr.startswith(f"mlplab: error: {words}")
            assert len(done.stderr.splitlines()) == 1
