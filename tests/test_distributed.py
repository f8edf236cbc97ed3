"""Data-parallel training: 2 ranks on loopback (gloo) give 1 process's weights; resume; a dead rank stops
the other; each rank reads only its row groups of a Parquet file."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import mlplab
from mlplab.cli import main
from mlplab.distributed import free_port, read_parquet_shard, train_distributed

pytestmark = pytest.mark.slow

SETTINGS = {"data": {"dataset": "moons", "n_train": 61, "val_fraction": 0.2},
            "model": {"hidden_sizes": [6, 4]},
            "training": {"optimizer": "adam", "learning_rate": 0.02, "batch_size": 15, "epochs": 6,
                         "checkpoint_every": 3}}


def weights(folder):
    return torch.load(folder / "model.pt", weights_only=True)


def test_two_ranks_give_one_process_weights_and_resume(tmp_path):
    # batch 15 over 2 ranks: slices of 7 and 8 rows, the last batch smaller; the update must not care
    config = mlplab.Config.from_dict(SETTINGS)
    folder = train_distributed(config, nproc=2, out=tmp_path / "ddp")
    alone = mlplab.train(mlplab.Config.from_dict(SETTINGS), out=tmp_path / "one")
    for name, tensor in weights(tmp_path / "one").items():
        torch.testing.assert_close(weights(folder)[name], tensor, atol=2e-6, rtol=0)
    ours = json.loads((folder / "history.json").read_text())
    np.testing.assert_allclose([r["train_loss"] for r in ours], [r["train_loss"] for r in alone.history], atol=1e-6)
    assert [r.get("val_accuracy") for r in ours] == [r.get("val_accuracy") for r in alone.history]
    # resume the distributed run for 3 more epochs, on 2 ranks; equal to 9 uninterrupted epochs in one process
    train_distributed(None, nproc=2, resume=folder, epochs=9)
    longer = mlplab.Config.from_dict(SETTINGS)
    longer.training.epochs = 9
    mlplab.train(longer, out=tmp_path / "nine")
    assert json.loads((folder / "run.json").read_text())["epoch"] == 9
    for name, tensor in weights(tmp_path / "nine").items():
        torch.testing.assert_close(weights(folder)[name], tensor, atol=2e-6, rtol=0)


def test_cli_nproc_refuses_bad_input_in_one_line(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "checkpoint.pt").write_text("someone's")
    for argv, message in ((["--nproc", "0"], "--nproc must be >= 1, got 0"),
                          (["--nproc", "2", "--timeout", "0"], "--timeout must be > 0 seconds"),
                          (["--nproc", "2", "--out", str(tmp_path / "taken")], "already holds a run")):
        with pytest.raises(SystemExit) as exit_:
            main(["train", "--epochs", "2", *argv])
        error = capsys.readouterr().err
        assert exit_.value.code == 2 and error.startswith("mlplab: error: ") and message in error
        assert error.count("\n") == 1
    assert (tmp_path / "taken" / "checkpoint.pt").read_text() == "someone's"


def test_a_dead_rank_stops_the_other_with_a_message(tmp_path):
    """Two workers started as torchrun starts them (RANK, WORLD_SIZE, MASTER_*); rank 1 is killed mid-run:
    rank 0 must stop by itself, quickly, with one clear line."""
    port = str(free_port())
    workers = []
    for rank in (0, 1):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=port, PYTHONUNBUFFERED="1")
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "mlplab", "train", "--epochs", "1000000", "--log-every", "1", "--optimizer", "adam",
             "--timeout", "20", "--out", str(tmp_path / "run")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        lead, other = workers
        for line in lead.stdout:  # wait until training is under way
            if line.startswith("epoch"):
                break
        other.send_signal(signal.SIGKILL)
        started = time.monotonic()
        _, error = lead.communicate(timeout=120)
        assert time.monotonic() - started < 60  # far sooner in practice: gloo sees the closed connection
        assert lead.returncode == 2
        assert error.startswith("mlplab: error: rank 0: lost contact with the other workers") and error.count("\n") == 1
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()


def test_each_rank_reads_only_its_row_groups(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"x": np.arange(100.0), "y": np.arange(100) % 2}), path, row_group_size=20)
    shards = [read_parquet_shard(path, rank, 2) for rank in (0, 1)]
    assert [len(shard["x"]) for shard in shards] == [60, 40]  # row groups 0, 2, 4 and 1, 3
    assert sorted(np.concatenate([shard["x"] for shard in shards]).tolist()) == list(np.arange(100.0))
    assert shards[1]["x"][:3].tolist() == [20.0, 21.0, 22.0]
    with pytest.raises(mlplab.MlplabError, match="5 row group"):
        read_parquet_shard(path, 5, 6)


def test_readme_distributed_commands_run(tmp_path, monkeypatch, capsys):
    """The README's --nproc commands as written; its two-node torchrun command run as two nodes on this
    machine (address 127.0.0.1, a free port, one process per node, a small Parquet file, 3 epochs)."""
    import re
    import shlex
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme[readme.index("## Data-parallel training"):readme.index("## Performance")]
    local, cluster = (shlex.split(block.replace("\\\n", " "), comments=True)
                      for block in re.findall(r"```sh\n(.*?)```", section, re.S))
    monkeypatch.chdir(tmp_path)
    for command in " ".join(local).split("mlplab ")[1:]:
        main(shlex.split(command))
    assert json.loads((tmp_path / "runs" / "ddp" / "run.json").read_text())["epoch"] == 30
    assert "Run saved to runs/ddp" in capsys.readouterr().out
    x = np.random.RandomState(0).normal(size=(200, 2))
    pq.write_table(pa.table({"x1": x[:, 0], "x2": x[:, 1], "y": (x[:, 0] * x[:, 1] > 0).astype(int)}),
                   tmp_path / "big.parquet", row_group_size=50)
    port, nodes = str(free_port()), []
    for node in ("0", "1"):
        argv = [{"10.0.0.1": "127.0.0.1", "29500": port}.get(word, word) for word in cluster]
        argv[argv.index("--node-rank") + 1] = node
        argv[argv.index("--nproc-per-node") + 1] = "1"
        argv[0] = str(Path(sys.executable).with_name("torchrun"))
        nodes.append(subprocess.Popen([*argv, "--epochs", "3", "--quiet"], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outputs = [node.communicate(timeout=300) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    assert outputs[0][0].strip().endswith("runs/big")
    assert json.loads((tmp_path / "runs" / "big" / "run.json").read_text())["epoch"] == 3


def _sharded_file(tmp_path):
    """200 rows in 5 row groups of 40: rank 0 of 2 reads groups 0, 2, 4 (120 rows), rank 1 groups 1, 3.
    x1 has missing values (median fill), 'violet' is a category of row group 3 alone (rank 1's)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rs = np.random.RandomState(0)
    x1 = rs.normal(size=200)
    x1[rs.rand(200) < 0.1] = np.nan
    x2 = rs.randint(0, 50, size=200)
    color = np.array(["red", "green", "blue"], dtype=object)[rs.randint(0, 3, size=200)]
    color[120:160:7] = "violet"
    color[rs.rand(200) < 0.05] = None
    y = ((np.nan_to_num(x1) + (x2 > 25)) > 0.5).astype(int)
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"x1": x1, "x2": x2, "color": pa.array(color.tolist()), "y": y}), path,
                   row_group_size=40)
    return path


def test_sharded_parquet_full_batch_equals_one_process(tmp_path):
    """Each rank reads only its row groups; splits, fills, categories and scaling are one process's, and
    with the whole training set as the batch the weights are one process's to float32 rounding."""
    settings = {"data": {"path": str(_sharded_file(tmp_path)), "target": "y"}, "model": {"hidden_sizes": [8]},
                "training": {"batch_size": None, "epochs": 25, "learning_rate": 0.01}}
    folder = train_distributed(mlplab.Config.from_dict(settings), nproc=2, out=tmp_path / "ddp")
    alone = mlplab.train(mlplab.Config.from_dict(settings), out=tmp_path / "one")
    ours, theirs = (json.loads((path / "run.json").read_text()) for path in (folder, tmp_path / "one"))
    shard = ours["data"]["shard"]
    assert shard["rows_read"] == [120, 80] and shard["row_groups"] == 5  # nobody read the whole file
    assert sum(shard["train_rows"]) == 128  # 200 rows - 40 test - 32 validation, as one process splits them
    assert shard["test_rows"] == 40
    assert ours["preprocessor"]["features"] == theirs["preprocessor"]["features"]  # exact median fills, categories
    assert "violet" in ours["preprocessor"]["features"][2]["categories"]
    np.testing.assert_allclose(ours["preprocessor"]["offset"], theirs["preprocessor"]["offset"], rtol=1e-12)
    np.testing.assert_allclose(ours["preprocessor"]["divisor"], theirs["preprocessor"]["divisor"], rtol=1e-12)
    for name, tensor in weights(tmp_path / "one").items():
        torch.testing.assert_close(weights(folder)[name], tensor, atol=2e-6, rtol=0)
    history = json.loads((folder / "history.json").read_text())
    np.testing.assert_allclose([r["train_loss"] for r in history], [r["train_loss"] for r in alone.history],
                               atol=1e-6)
    assert [r.get("val_accuracy") for r in history] == [r.get("val_accuracy") for r in alone.history]
    assert ours["metrics"]["test"]["accuracy"] == theirs["metrics"]["test"]["accuracy"]
    assert "train" not in ours["metrics"]  # a rank's shard is not the training set: not scored as if it were


def test_sharded_parquet_mini_batches_resume_exactly(tmp_path):
    """Mini-batches from each rank's own shuffle of its rows: a run interrupted after 3 epochs and resumed
    ends where an uninterrupted 2-rank run does; early stopping agrees on both ranks (no hang)."""
    settings = {"data": {"path": str(_sharded_file(tmp_path)), "target": "y"}, "model": {"hidden_sizes": [8]},
                "training": {"batch_size": 32, "epochs": 3, "learning_rate": 0.01, "checkpoint_every": 3}}
    folder = train_distributed(mlplab.Config.from_dict(settings), nproc=2, out=tmp_path / "three")
    train_distributed(None, nproc=2, resume=folder, epochs=6)
    settings["training"]["epochs"] = 6
    whole = train_distributed(mlplab.Config.from_dict(settings), nproc=2, out=tmp_path / "six")
    for name, tensor in weights(whole).items():
        torch.testing.assert_close(weights(folder)[name], tensor, atol=1e-6, rtol=0)
    resumed, uninterrupted = (json.loads((path / "history.json").read_text()) for path in (folder, whole))
    assert [r.get("val_loss", 0.0) for r in resumed] == pytest.approx([r.get("val_loss", 0.0) for r in uninterrupted],
                                                                 abs=1e-6)
    assert all(b["train_loss"] < a["train_loss"] for a, b in zip(resumed, resumed[1:]))  # it learns
