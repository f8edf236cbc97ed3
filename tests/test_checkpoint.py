"""Checkpoints: the tutorial's model.pt, safe loading, truncation and corruption, atomic writes."""

import random

import pytest
import torch
from conftest import NeuralNet

import mlplab
from mlplab.checkpoint import CheckpointError, atomic_write, load_checkpoint, load_state_dict


def test_tutorial_neuralnet_loads_model_pt_strictly_and_agrees(tutorial_run, cli):
    model = NeuralNet(2, 5)
    state = torch.load(tutorial_run.path / "model.pt")  # exactly the tutorial's call
    assert list(state) == ["linear_1.weight", "linear_1.bias", "linear_2.weight", "linear_2.bias"]
    model.load_state_dict(state, strict=True)
    model.eval()
    theirs = model(torch.FloatTensor([-1, 1])).item()
    ours = mlplab.load(tutorial_run.path).predict_proba([[-1, 1]])[0, 1]
    assert ours == pytest.approx(theirs, abs=1e-7)
    code, out, _ = cli("predict", tutorial_run.path, "--", "-1", "1")
    assert code == 0
    assert f"P(label 1) = {theirs:.6f}" in out
    assert "predicted label: 1" in out


def test_predict_state_dict_agrees_with_a_tutorial_model(tmp_path, cli):
    torch.manual_seed(7)
    model = NeuralNet(2, 5)
    torch.save(model.state_dict(), tmp_path / "model.pt")
    for point in ([-1.0, 1.0], [0.3, -2.0]):
        expected = model(torch.FloatTensor(point)).item()
        code, out, err = cli("predict", "--state-dict", tmp_path / "model.pt", "--", *map(str, point))
        assert code == 0, err
        assert f"P(label 1) = {expected:.6f}" in out
        assert f"predicted label: {int(expected >= 0.5)}" in out


def test_checkpoint_is_self_describing(tutorial_run):
    meta = load_checkpoint(tutorial_run.path).meta
    assert meta["task"] == "binary" and meta["classes"] == [0, 1]
    assert meta["architecture"] == {"n_inputs": 2, "hidden_sizes": [5], "n_outputs": 1, "activation": "relu",
                                    "dropout": 0.0, "output": "sigmoid", "dtype": "float32"}
    assert meta["config"]["training"]["learning_rate"] == 0.03
    assert meta["metrics"]["test"]["accuracy"] == tutorial_run.metrics["test"]["accuracy"]
    assert meta["torch_version"] and meta["mlplab_version"] == mlplab.__version__
    assert meta["preprocessor"]["scale"] == "none"


def test_truncated_checkpoints_are_refused(tutorial_run, tmp_path):
    data = (tutorial_run.path / "checkpoint.pt").read_bytes()
    offsets = random.Random(0).sample(range(1, len(data)), 25) + [0, len(data) - 1]
    for offset in offsets:
        broken = tmp_path / f"cut-{offset}.pt"
        broken.write_bytes(data[:offset])
        with pytest.raises(CheckpointError, match="truncated, corrupt|not an mlplab|corrupt"):
            mlplab.load(broken)


def test_loading_never_unpickles_objects(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("unpickled!",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "mlplab-checkpoint", "version": 1, "meta": "{}", "weights": {}, "x": Evil()}, path)
    with pytest.raises(CheckpointError, match="could run arbitrary code"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError):
        load_state_dict(path)


def test_files_that_are_not_checkpoints(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(text)
    plain = tmp_path / "plain.pt"
    torch.save({"w": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match="not an mlplab checkpoint"):
        load_checkpoint(plain)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="no checkpoint.pt"):
        load_checkpoint(tmp_path)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "file.bin"
    path.write_bytes(b"old")

    def crash(handle):
        handle.write(b"half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(path, crash)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]
