"""`mlplab serve` as a user runs it: a real uvicorn process on loopback, answering what `mlplab predict` prints."""

from __future__ import annotations

import csv
import io
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_served_predictions_equal_mlplab_predict(cli, tutorial_run, tmp_path):
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(25, 2)) * 1.5
    (tmp_path / "rows.csv").write_text("x1,x2\n" + "".join(f"{float(a)!r},{float(b)!r}\n" for a, b in rows))
    code, printed, _ = cli("predict", tutorial_run.path, "--input", tmp_path / "rows.csv")
    assert code == 0
    expected = list(csv.DictReader(io.StringIO(printed)))
    port = _free_port()
    command = [sys.executable, "-m", "mlplab", "serve", f"xor={tutorial_run.path}", "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):  # up to 60 s for the server to start on a busy machine
            try:
                if httpx.get(f"{base}/healthz", timeout=1).json() == {"status": "ok", "models": ["xor"]}:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        answer = httpx.post(f"{base}/v1/models/xor/predict", json={"rows": rows.tolist()}, timeout=10).json()
        as_csv = httpx.post(f"{base}/v1/models/xor/predict", content=(tmp_path / "rows.csv").read_bytes(),
                            headers={"content-type": "text/csv"}, timeout=10).json()
        assert httpx.get(f"{base}/docs", timeout=10).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert answer == as_csv
    assert answer["predictions"] == [int(row["prediction"]) for row in expected]
    printed_probabilities = [[float(row["p_0"]), float(row["p_1"])] for row in expected]
    np.testing.assert_allclose(answer["probabilities"], printed_probabilities, rtol=0, atol=5e-7)  # printed to 6 places


@pytest.mark.parametrize(("arguments", "words"), [
    (["no/such/run"], "does not exist"),
    (["../x=RUN"], "model name '../x' is not allowed"),
    (["RUN", "--workers", "0"], "--workers must be >= 1"),
    (["RUN", "--port", "70000"], "--port must be 0 to 65535"),
    (["RUN", "RUN"], "two runs would be served as"),
])
def test_serve_refuses_bad_input_before_listening(cli, tutorial_run, arguments, words):
    arguments = [str(tutorial_run.path) if a == "RUN" else a.replace("=RUN", f"={tutorial_run.path}")
                 for a in arguments]
    code, out, err = cli("serve", *arguments)
    assert code == 2 and err.startswith("mlplab: error: ") and err.count("\n") == 1
    assert words in err


@pytest.mark.slow
def test_readme_serve_example_runs_as_written(tmp_path):
    """The README's shell block, verbatim but for the port (a free one)."""
    import os
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme[readme.index("## Serving and exporting"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1).replace("8000", str(_free_port()))
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", "-c", block], cwd=tmp_path, env=environment, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    import json

    health, by_json, by_csv = (json.loads(line) for line in result.stdout.splitlines() if line.startswith("{"))
    assert health == {"status": "ok", "models": ["xor"]}
    assert by_json["predictions"] == [1, 0] and by_csv["predictions"] == [1]
