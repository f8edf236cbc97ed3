"""The batched sweep: every model equals `mlplab train` alone with its settings; the CLI, folder and errors."""

import json

import numpy as np
import pytest

import mlplab
from mlplab.cli import main
from mlplab.sweep import load_sweep_config, parse_grid_option, run_sweep


def assert_each_model_equals_train(base: dict, grid: dict, expect_stopped: bool = False) -> None:
    result = run_sweep(mlplab.Config.from_dict(base), grid, save=False)
    stopped = 0
    for row, curves in zip(result.rows, zip(*result.curves.values())):
        config = mlplab.Config.from_dict(base)
        for key in grid:
            config.set(key, row[key])
        alone = mlplab.train(config, save=False)
        assert row["epochs"] == len(alone.history)
        for name, curve in zip(result.curves, curves):
            # train's held-out scores may exist only at log points: compare the epochs it has
            scored = [i for i, record in enumerate(alone.history) if name in record]
            reference = np.array([alone.history[i][name] for i in scored])
            np.testing.assert_allclose(np.asarray(curve)[scored], reference, atol=1e-5, rtol=0,
                                       err_msg=f"{name} of {row}")
        for split, metrics in alone.metrics.items():
            assert row[f"{split}_loss"] == pytest.approx(metrics["loss"], abs=1e-5)
            if "accuracy" in metrics:
                assert row[f"{split}_accuracy"] == metrics["accuracy"]
        stopped += alone.stop_reason is not None
        assert (row["stop_reason"] is None) == (alone.stop_reason is None)
    assert (stopped > 0) == expect_stopped


def test_tutorial_sgd_full_batch_over_learning_rates_and_seeds():
    # the fast path alone; the seed changes the data and the initial weights in both
    assert_each_model_equals_train({"training": {"epochs": 100}},
                                   {"training.learning_rate": [0.03, 0.3], "seed": [0, 1]})


def test_adam_mini_batch_two_shapes_with_early_stopping():
    base = {"data": {"dataset": "moons", "n_train": 90, "val_fraction": 0.2},
            "training": {"optimizer": "adam", "batch_size": 16, "epochs": 30, "early_stopping": True,
                         "patience": 3, "learning_rate": 0.1}}
    assert_each_model_equals_train(base, {"model.hidden_sizes": [[4], [6, 3]], "seed": [0, 1]}, expect_stopped=True)


def test_multiclass_momentum_and_regression_adamw():
    assert_each_model_equals_train(
        {"data": {"dataset": "blobs", "n_train": 60}, "model": {"hidden_sizes": [7], "activation": "tanh"},
         "training": {"batch_size": 25, "epochs": 20, "momentum": 0.9, "nesterov": True}},
        {"training.learning_rate": [0.01, 0.05], "training.weight_decay": [0.0, 0.01]})
    assert_each_model_equals_train(
        {"data": {"dataset": "linear", "n_train": 50}, "model": {"hidden_sizes": [8]},
         "training": {"optimizer": "adamw", "epochs": 20, "weight_decay": 0.01}},
        {"seed": [3, 4]})


def test_grid_syntax():
    assert parse_grid_option("training.learning_rate=0.01,0.03") == ("training.learning_rate", [0.01, 0.03])
    assert parse_grid_option("seed=0..3") == ("seed", [0, 1, 2, 3])
    assert parse_grid_option("model.hidden_sizes=5;8;16,16") == ("model.hidden_sizes", [[5], [8], [16, 16]])
    assert parse_grid_option("training.early_stopping=true,false")[1] == [True, False]


def test_cli_sweep_folder_best_run_and_toml(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "base.toml").write_text('[training]\nepochs = 60\n\n[sweep]\nmetric = "accuracy"\n\n'
                                        '[sweep.grid]\n"training.learning_rate" = [0.03, 0.3]\n')
    main(["sweep", "--config", "base.toml", "--grid", "seed=0..1", "--grid", "model.hidden_sizes=3;6",
          "--out", "sw", "--top", "3"])
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("8 models in") and "test_accuracy" in printed[0]
    assert printed[1].split()[:4] == ["model", "training.learning_rate", "seed", "model.hidden_sizes"]
    assert len(printed) == 1 + 1 + 3 + 1
    folder = tmp_path / "sw"
    summary = json.loads((folder / "results.json").read_text())
    assert len(summary["rows"]) == 8 and summary["metric"] == "test_accuracy"
    assert (folder / "results.csv").read_text().count("\n") == 9
    assert np.load(folder / "curves.npz")["train_loss"].shape == (8, 60)
    assert (folder / "sweep.png").stat().st_size > 0
    best = summary["rows"][summary["best"]]
    assert best["test_accuracy"] == max(row["test_accuracy"] for row in summary["rows"])
    model = mlplab.load(folder / "best")  # an ordinary run folder, trained with the best settings
    assert model.meta["config"]["training"]["learning_rate"] == best["training.learning_rate"]
    assert model.meta["metrics"]["test"]["accuracy"] == best["test_accuracy"]
    main(["predict", str(folder / "best"), "--", "-1", "1"])
    assert "P(label 1)" in capsys.readouterr().out
    # sweep.toml repeats the sweep
    base, grid, options = load_sweep_config(folder / "sweep.toml")
    assert grid == {"training.learning_rate": [0.03, 0.3], "seed": [0, 1], "model.hidden_sizes": [[3], [6]]}
    assert base.training.epochs == 60 and options == {"metric": "test_accuracy"}


@pytest.mark.parametrize(("argv", "message"), [
    (["--grid", "training.learning_rate"], "--grid 'training.learning_rate' must be KEY=VALUES"),
    (["--grid", "training.speed=1,2"], "training.speed is not a setting"),
    (["--grid", "seed=5..1"], "seed range '5..1' must be two whole numbers"),
    (["--grid", "training.learning_rate=-1,0.1"], "grid value training.learning_rate=-1 must be a number > 0"),
    (["--grid", "seed=0,1", "--dropout", "0.5"], "model.dropout = 0.5 is not supported by the batched sweep"),
    (["--grid", "seed=0,1", "--metric", "banana"], "sweep.metric test_banana is not a result column"),
    ([], "nothing to sweep"),
    (["--grid", "seed=0", "--top", "-1"], "--top must be >= 0"),
    (["--grid", "seed=0", "--out", "mine"], "--out mine is a folder mlplab did not write"),
])
def test_cli_bad_input_is_one_line_and_writes_nothing(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", "--epochs", "5", *argv])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("mlplab: error: ") and message in error and error.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine"


def test_existing_sweep_needs_force(tmp_path, capsys):
    argv = ["sweep", "--epochs", "5", "--grid", "seed=0,1", "--out", str(tmp_path / "sw"), "--quiet"]
    main(argv)
    with pytest.raises(SystemExit):
        main(argv)
    assert "already holds a sweep" in capsys.readouterr().err
    main([*argv, "--force", "--grid", "seed=0,1,2"])
    assert len(json.loads((tmp_path / "sw" / "results.json").read_text())["rows"]) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["sw"]  # no staging folder left behind


def test_sweep_search_finds_what_grid_search_cv_finds():
    from sklearn.datasets import load_iris
    from sklearn.model_selection import GridSearchCV

    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    estimator = mlplab.NeuralNetClassifier(hidden_layer_sizes=(6,), max_iter=8, batch_size=50)
    grid = {"learning_rate_init": [0.003, 0.1], "alpha": [0.0, 5.0], "random_state": [0, 1]}
    ours = mlplab.sweep_search(estimator, grid, X, y, cv=3)
    theirs = GridSearchCV(estimator, grid, cv=3).fit(X, y)
    assert ours.best_params_ == theirs.best_params_
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"], theirs.cv_results_["mean_test_score"], atol=1e-9)
    assert ours.best_estimator_.score(X, y) == theirs.best_estimator_.score(X, y)


def test_readme_sweep_commands_run(tmp_path, monkeypatch, capsys):
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme[readme.index("## Sweeps"):readme.index("## Performance")]
    commands = re.findall(r"```sh\n(.*?)```", section, re.S)[0]
    toml = re.findall(r"```toml\n(.*?)```", section, re.S)[0]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sweep.toml").write_text(toml)
    for line in commands.strip().splitlines():
        argv = re.findall(r"'[^']*'|\S+", line.split("  #")[0])
        assert argv[0] == "mlplab"
        main([word.strip("'") for word in argv[1:]])
    out = capsys.readouterr().out
    assert "24 models in" in out and "36 models in" in out and "P(label 1)" in out


def test_docstring_examples_of_sweep():
    import doctest

    from mlplab import sweep

    failures, tried = doctest.testmod(sweep, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0
