"""A checkpoint is verified before it is trusted: checksum over description and weights, schema and
shape checks before any network is built, and only regular files of sane size are read."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from conftest import quick_config

import mlplab
from mlplab.checkpoint import CheckpointError, full_digest, load_checkpoint


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("integrity") / "run"
    mlplab.train(quick_config(epochs=20, **{"data.scale": "standard"}), out=folder)
    return folder


def copy_run(small_run, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(small_run, target)
    return target


def rewrite_meta(path, change, resign=True):
    """Edit a checkpoint's description; ``resign`` recomputes the checksum, so only the schema can object."""
    payload = torch.load(path, weights_only=True)
    meta = json.loads(payload["meta"])
    change(meta)
    payload["meta"] = json.dumps(meta)
    if resign:
        payload["sha256"] = full_digest(payload["meta"], meta["weights_sha256"])
    torch.save(payload, path)


def test_a_flipped_byte_in_the_description_is_caught(small_run, tmp_path):
    folder = copy_run(small_run, tmp_path)
    path = folder / "checkpoint.pt"
    data = bytearray(path.read_bytes())
    at = data.index(b'"classes": [0, 1]') + len(b'"classes": [')
    data[at] = ord("7")  # the label 0 becomes 7: a different answer, same size, valid JSON
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="do not match the checksum"):
        load_checkpoint(folder)


def test_a_flipped_byte_in_the_weights_is_caught(small_run, tmp_path):
    folder = copy_run(small_run, tmp_path)
    payload = torch.load(folder / "checkpoint.pt", weights_only=True)
    payload["weights"]["linear_1.weight"][0, 0] += 1.0
    torch.save(payload, folder / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="checksum"):
        mlplab.load(folder)


def _set(*path_and_value):
    *keys, value = path_and_value

    def change(meta):
        target = meta
        for key in keys[:-1]:
            target = target[key]
        if value is KeyError:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value

    return change


@pytest.mark.parametrize("change, message", [
    (_set("architecture", "hidden_sizes", [28000]), "shape"),
    (_set("architecture", "hidden_sizes", [5, 5]), "missing linear_3.weight"),
    (_set("architecture", "n_inputs", 3), "encodes 2 input"),
    (_set("task", "ranking"), "task must be one of"),
    (_set("task", KeyError), "task must be one of"),
    (_set("classes", [0]), "binary needs 2 classes, got 1"),
    (_set("classes", [0, 0]), "label twice"),
    (_set("task", "regression"), "a regression model has no classes"),
    (_set("task", "multiclass"), "one output per class (at least 2): 1 output(s), 2 classes"),
    (_set("preprocessor", "offset", [0.5]), "offset must hold 2 finite numbers, got 1"),
    (_set("preprocessor", "divisor", [1.0, 0.0]), "divisor holds a zero"),
    (_set("architecture", "dtype", "float16"), "dtype must be one of float32, float64"),
    (_set("architecture", "dtype", "float64"), "is float32 but the description says float64"),
    (_set("architecture", "activation", "swish"), "activation"),
    (_set("preprocessor", KeyError), "preprocessor is missing"),
])
def test_descriptions_that_cannot_be_right_are_refused(small_run, tmp_path, cli, change, message):
    folder = copy_run(small_run, tmp_path)
    rewrite_meta(folder / "checkpoint.pt", change)
    code, out, err = cli("predict", folder, "--", "-1", "1")
    assert code == 2 and out == ""
    assert err.startswith("mlplab: error: ") and err.count("\n") == 1 and message in err, err


def test_a_huge_claimed_network_is_refused_before_allocating(small_run, tmp_path):
    folder = copy_run(small_run, tmp_path)
    rewrite_meta(folder / "checkpoint.pt", _set("architecture", "hidden_sizes", [28000]))
    with pytest.raises(CheckpointError, match=r"linear_1.weight has shape \(5, 2\)"):
        mlplab.load(folder)


def test_refused_pickle_says_it_could_run_code(tmp_path, cli):
    class Evil:
        def __reduce__(self):
            return (print, ("unpickled!",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "mlplab-checkpoint", "version": 2, "meta": "{}", "weights": {}, "x": Evil()}, path)
    for args in (["predict", path, "--", "1", "2"], ["predict", "--state-dict", path, "--", "1", "2"]):
        code, out, err = cli(*args)
        assert code == 2 and "unpickled" not in out
        assert err.count("\n") == 1 and "could run arbitrary code" in err, err


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize("name, command", [
    ("checkpoint.pt", ["predict", "{run}", "--", "1", "1"]),
    ("run.json", ["show", "{run}"]),
    ("config.toml", ["show", "{run}"]),
    ("history.json", ["plot", "history", "{run}", "--out", "{tmp}/h.png"]),
    ("snapshots.pt", ["plot", "animate", "{run}", "--out", "{tmp}/a.gif"]),
])
def test_run_files_that_are_not_regular_files_are_refused(small_run, tmp_path, cli, name, command):
    folder = copy_run(small_run, tmp_path)
    (folder / name).unlink(missing_ok=True)
    (folder / name).symlink_to("/dev/zero")
    code, _, err = cli(*[part.format(run=folder, tmp=tmp_path) for part in command])
    assert code == 2 and err.count("\n") == 1 and "not a regular file" in err, err


def test_a_damaged_snapshots_file_is_refused_cleanly(small_run, tmp_path, cli):
    folder = copy_run(small_run, tmp_path)
    (folder / "snapshots.pt").write_bytes(b"PK\x03\x04 not really a zip")
    code, _, err = cli("plot", "animate", folder, "--out", tmp_path / "a.gif")
    assert code == 2 and err.count("\n") == 1 and "snapshots" in err, err
    torch.save([{"epoch": "x", "weights": {"linear_1.weight": torch.zeros(1)}}], folder / "snapshots.pt")
    code, _, err = cli("plot", "animate", folder, "--out", tmp_path / "a.gif")
    assert code == 2 and err.count("\n") == 1 and "snapshots" in err, err


def test_runs_skips_and_names_unreadable_folders(small_run, tmp_path, cli):
    root = tmp_path / "runs"
    shutil.copytree(small_run, root / "good")
    (root / "junk").mkdir()
    (root / "junk" / "run.json").write_text("{not json")
    (root / "partial").mkdir()
    (root / "partial" / "run.json").write_text(json.dumps({"task": "binary"}))
    code, out, err = cli("runs", root)
    assert code == 0
    assert [Path(line.split()[0]).name for line in out.strip().splitlines()[1:]] == ["good"]
    assert "skipped junk" in err and "skipped partial" in err and len(err.strip().splitlines()) == 2


def test_show_on_a_damaged_run_is_one_line(small_run, tmp_path, cli):
    folder = copy_run(small_run, tmp_path)
    (folder / "run.json").write_text('{"task": "binary", "architecture": 5}')
    code, _, err = cli("show", folder)
    assert code == 2 and err.count("\n") == 1 and "architecture" in err, err
