"""`mlplab export`: ONNX checked against onnxruntime, torch files loaded by plain torch without mlplab."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import mlplab
from mlplab.export import export
from mlplab.model import ACTIVATIONS

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

N_ROWS = 1000


# (name, task, scale, activation): every task, categorical inputs, both scalings, every activation.
CASES = [("multiclass", "multiclass", "standard", "relu"), ("binary", "binary", "minmax", "tanh"),
         ("regression", "regression", "standard", "gelu")]
CASES += [(f"binary-{name}", "binary", "standard", name) for name in ACTIVATIONS
          if name not in ("relu", "tanh", "gelu")]
CLASSES = {"multiclass": ["high", "low", "mid"], "binary": ["no", "yes"], "regression": None}


def _model(task, scale, activation):
    """A model with random weights (what is checked is the translation, not the training) over two
    numeric features and a categorical one, preprocessed as mlplab fits it."""
    from mlplab.model import MLP
    from mlplab.preprocess import Preprocessor
    from mlplab.run import TrainedModel

    rng = np.random.default_rng(0)
    table = {"x1": rng.normal(2.0, 3.0, size=50), "x2": rng.uniform(-5, 1, size=50),
             "colour": rng.choice(["red", "green", "blue"], size=50).astype(object)}
    preprocessor = Preprocessor.fit(table, scale)
    n_outputs = 3 if task == "multiclass" else 1
    module = MLP(preprocessor.n_inputs, [6, 5], n_outputs, activation).eval()
    meta = {"mlplab_version": mlplab.__version__}
    if task == "regression":  # trained on a standardised target, as file data is by default: [mean, std]
        meta["target_scaling"] = [250.0, 40.0]
    return TrainedModel(module, task, CLASSES[task], preprocessor, meta)


@pytest.fixture(scope="module")
def models(tutorial_run):
    trained = {name: _model(task, scale, activation) for name, task, scale, activation in CASES}
    trained["xor"] = tutorial_run.model  # a trained one, with integer labels
    return trained


def _random_rows(model, seed=1):
    rng = np.random.default_rng(seed)
    rows = {}
    for feature in model.preprocessor.features:
        if feature["kind"] == "numeric":
            rows[feature["name"]] = (rng.normal(size=N_ROWS) * 3).astype(np.float32)
        else:
            rows[feature["name"]] = rng.choice(feature["categories"], size=N_ROWS).astype(object)
    return rows


@pytest.mark.parametrize("name", [case[0] for case in CASES] + ["xor"])
def test_onnx_equals_mlplab_on_random_rows(models, name, tmp_path):
    model = models[name]
    written = export(model, "onnx", tmp_path / "model.onnx")
    assert [path.name for path in written] == ["model.onnx", "model.onnx.json"]
    session = ort.InferenceSession(str(written[0]), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == model.feature_names
    rows = _random_rows(model)
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, rows)))
    np.testing.assert_allclose(outputs["logits"].squeeze(-1) if model.task != "multiclass" else outputs["logits"],
                               model.decision_function(rows), rtol=1e-5, atol=1e-5)  # float32: 1e-5 relative
    if model.task == "regression":
        np.testing.assert_allclose(outputs["value"], model.predict(rows), rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_allclose(outputs["probabilities"], model.predict_proba(rows), rtol=0, atol=1e-5)
        assert outputs["label"].tolist() == model.predict(rows).tolist()
    sidecar = json.loads(written[1].read_text())
    assert sidecar["format"] == "mlplab-export" and sidecar["task"] == model.task
    assert sidecar["classes"] == model.classes and sidecar["preprocessing"]["applied_in_model"] is True


# Runs in a fresh interpreter where `import mlplab` fails: the files must need torch only.
LOADER = """
import sys, numpy as np
sys.modules["mlplab"] = None  # any attempt to import mlplab now raises ImportError
import torch
for path, kind, rows in zip(*[iter(sys.argv[1:])] * 3):
    module = torch.jit.load(path) if kind == "torchscript" else torch.export.load(path).module()
    with torch.no_grad():
        logits, second = module(torch.from_numpy(np.load(rows)))
    np.save(rows + ".second.npy", second.double().numpy())
"""


@pytest.mark.slow
def test_torch_files_load_without_mlplab(models, tmp_path):
    """TorchScript for each task; torch.export (.pt2) once, as exporting it traces with dynamo (slow)."""
    cases = [("multiclass", "torchscript"), ("regression", "torchscript"), ("xor", "torchscript"), ("xor", "pt2")]
    arguments, expected = [], []
    for number, (name, kind) in enumerate(cases):
        model = models[name]
        path = export(model, kind, tmp_path / f"model{number}.{kind}")[0]
        rows = _random_rows(model, seed=number)
        matrix = np.column_stack([
            rows[f["name"]] if f["kind"] == "numeric" else
            np.array([f["categories"].index(v) for v in rows[f["name"]]], dtype=np.float32)
            for f in model.preprocessor.features]).astype(np.float32)
        np.save(tmp_path / f"rows{number}.npy", matrix)
        arguments += [str(path), kind, str(tmp_path / f"rows{number}.npy")]
        expected.append(model.predict(rows) if model.task == "regression" else model.predict_proba(rows))
    subprocess.run([sys.executable, "-c", LOADER, *arguments], check=True, cwd=tmp_path)
    for number, values in enumerate(expected):
        np.testing.assert_allclose(np.load(tmp_path / f"rows{number}.npy.second.npy"), values, rtol=1e-5, atol=1e-5)


def test_existing_files_not_written_by_mlplab_are_kept(models, tmp_path):
    target = tmp_path / "model.onnx"
    target.write_text("my own notes")
    with pytest.raises(mlplab.MlplabError, match="not written by mlplab"):
        export(models["xor"], "onnx", target)
    assert target.read_text() == "my own notes" and not (tmp_path / "model.onnx.json").exists()
    (tmp_path / "other.onnx.json").write_text("{}")
    with pytest.raises(mlplab.MlplabError, match="not written by mlplab"):
        export(models["xor"], "onnx", tmp_path / "other.onnx")
    assert not (tmp_path / "other.onnx").exists()
    first = export(models["xor"], "torchscript", tmp_path / "m.pt")  # mlplab's own files are replaced
    assert export(models["xor"], "torchscript", tmp_path / "m.pt") == first
    (tmp_path / "zipped.pt").write_bytes((tmp_path / "m.pt").read_bytes()[:100])  # damaged: not ours either
    with pytest.raises(mlplab.MlplabError, match="not written by mlplab"):
        export(models["xor"], "torchscript", tmp_path / "zipped.pt")


@pytest.mark.parametrize(("arguments", "words"), [
    (["--format", "tflite"], "--format must be one of onnx, torchscript, pt2; got 'tflite'"),
    (["--format", "onnx", "--output", "no/such/folder/m.onnx"], "the folder no/such/folder does not exist"),
    (["--format", "onnx", "--output", "."], "is a folder"),
])
def test_export_cli_bad_input(cli, tutorial_run, arguments, words, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("export", tutorial_run.path, *arguments)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("mlplab: error: ") and words in err
    code, _, err = cli("export", tmp_path / "no-run", "--format", "onnx")
    assert code == 2 and "does not exist" in err and err.count("\n") == 1


def test_export_cli_writes_the_model_and_its_sidecar(cli, tutorial_run, tmp_path):
    code, out, err = cli("export", tutorial_run.path, "--format", "onnx", "--output", tmp_path / "xor.onnx")
    assert code == 0 and err == ""
    assert out.splitlines() == [f"wrote {tmp_path / 'xor.onnx'}", f"wrote {tmp_path / 'xor.onnx.json'}"]
    session = ort.InferenceSession(str(tmp_path / "xor.onnx"), providers=["CPUExecutionProvider"])
    label = session.run(["label"], {"x1": np.array([-1.0], np.float32), "x2": np.array([1.0], np.float32)})[0]
    assert label.tolist() == [1]
