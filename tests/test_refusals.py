"""No silent wrong answers, and every failure one clean line: flags that would do nothing, label leaks,
overflowing values, sizes that cannot fit, wrong types through the Python API, exact messages."""

import os
import warnings

import numpy as np
import pytest

import mlplab
from mlplab.config import DATASETS_WITH_CLASSES
from mlplab.data import GENERATORS


def one_error_line(code, err):
    return code == 2 and err.startswith("mlplab: error: ") and err.count("\n") == 1 and "Traceback" not in err


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "d.csv"
    rng = np.random.default_rng(0)
    rows = ["a,b,y"] + [f"{a:.3f},{b:.3f},{int(a + b > 0)}" for a, b in rng.normal(size=(40, 2))]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("args, message", [
    (["--target", "y"], "--target applies only to a data file"),
    (["--features", "a,b"], "--features applies only to a data file"),
    (["--test-data", "t.csv"], "--test-data applies only to a data file"),
    (["--classes", "3"], "--classes does not apply to xor-blobs, whose classes are fixed"),
    (["--dataset", "moons", "--data", "{csv}", "--target", "y"], "--dataset and data.path (--data) both name the data"),
    (["--data", "{csv}", "--target", "y", "--classes", "3"], "--classes applies only to the built-in data sets"),
    (["--data", "{csv}", "--target", "y", "--noise", "0.1"], "--noise applies only to the built-in data sets"),
    (["--data", "{csv}", "--target", "y", "--features", "a,y"], "includes the target 'y'"),
    (["--format", "svg"], "--format chooses the figures' format; it applies only with --plots"),
    (["--seed", "5000000000"], "--seed must be a whole number >= 0 and <= 4294967295, got 5000000000"),
    (["--hidden", "100000000"], "more than this machine's"),
    (["--n-train", "10000000000"], "--n-train asks for 10,000,000,020 rows"),
])
def test_train_refuses_before_writing_anything(cli, tmp_path, csv_file, args, message):
    out = tmp_path / "run"
    code, stdout, err = cli("train", *[a.format(csv=csv_file) for a in args], "--epochs", "5", "--out", out)
    assert one_error_line(code, err) and message in err, err
    assert not out.exists()


def test_classes_is_declared_for_exactly_the_generators_that_use_it():
    assert set(DATASETS_WITH_CLASSES) == {name for name, g in GENERATORS.items() if g.n_classes is not None}


def test_predict_input_and_values_together_are_refused(cli, tutorial_run, tmp_path):
    (tmp_path / "rows.csv").write_text("x1,x2\n1,1\n")
    code, _, err = cli("predict", tutorial_run.path, "--input", tmp_path / "rows.csv", "--", "1", "1")
    assert one_error_line(code, err) and "either --input FILE or one row of values" in err


def test_values_beyond_the_dtype_are_refused_at_predict(cli, tutorial_run):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NumPy RuntimeWarning may come before (or instead of) the error
        code, out, err = cli("predict", tutorial_run.path, "--", "-1e39", "1")
    assert one_error_line(code, err) and out == ""
    assert "column 'x1' holds -1e+39 (row 1), beyond the range of float32" in err


def test_training_data_too_large_is_blamed_on_the_data(cli, tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("a,b,y\n" + "".join(f"{i}e30,{i},{i % 2}\n" for i in range(1, 30)))
    code, _, err = cli("train", "--data", path, "--target", "y", "--epochs", "5", "--scale", "none",
                       "--out", tmp_path / "r")  # a data file is scaled by default, which would tame them
    assert one_error_line(code, err) and "'a' holds values up to 2.9e+31, too large to train on in float32" in err
    assert "learning rate" not in err and not (tmp_path / "r").exists()
    path.write_text("a,y\n" + "".join(f"{i},{i}e39\n" for i in range(1, 30)))
    code, _, err = cli("train", "--data", path, "--target", "y", "--epochs", "5", "--out", tmp_path / "r")
    assert one_error_line(code, err) and "'target' holds values up to" in err


def test_regression_on_the_tutorial_data_ends_without_class_probabilities(cli, tmp_path):
    code, out, err = cli("train", "--task", "regression", "--epochs", "20", "--out", tmp_path / "r")
    assert code == 0, err
    assert out.strip().splitlines()[-1].startswith("The prediction for [-1, 1] is ")


def test_evaluate_a_regression_run_on_a_text_target(cli, tmp_path):
    assert cli("train", "--dataset", "linear", "--epochs", "5", "--out", tmp_path / "r", "--quiet")[0] == 0
    (tmp_path / "new.csv").write_text("x1,x2,y\n1,2,high\n0,1,low\n")
    code, _, err = cli("evaluate", tmp_path / "r", "--data", tmp_path / "new.csv")
    assert one_error_line(code, err) and "holds text, but this run is a regression model" in err


def test_output_that_is_a_folder(cli, tutorial_run, tmp_path):
    (tmp_path / "rows.csv").write_text("x1,x2\n1,1\n")
    code, _, err = cli("predict", tutorial_run.path, "--input", tmp_path / "rows.csv", "--output", tmp_path)
    assert one_error_line(code, err) and "is a folder" in err


def test_csv_outputs_follow_the_umask(cli, tutorial_run, tmp_path):
    (tmp_path / "rows.csv").write_text("x1,x2\n1,1\n")
    old = os.umask(0o022)
    try:
        assert cli("predict", tutorial_run.path, "--input", tmp_path / "rows.csv", "--output",
                   tmp_path / "p.csv")[0] == 0
    finally:
        os.umask(old)
    assert (tmp_path / "p.csv").stat().st_mode & 0o777 == 0o644


def test_a_config_that_is_not_utf8(cli, tmp_path):
    (tmp_path / "c.toml").write_bytes('[data]\ndataset = "moons" # café\n'.encode("latin-1"))
    code, _, err = cli("train", "--config", tmp_path / "c.toml")
    assert one_error_line(code, err) and "is not UTF-8 text" in err and "save it with that encoding" in err


def test_single_class_message_shows_plain_numbers(cli, tmp_path):
    (tmp_path / "one.csv").write_text("a,y\n" + "".join(f"{i},1\n" for i in range(10)))
    code, _, err = cli("train", "--data", tmp_path / "one.csv", "--target", "y", "--task", "binary")
    assert one_error_line(code, err) and "single class (1)" in err and "np." not in err


def test_the_python_api_refuses_wrong_types_with_mlplab_errors():
    with pytest.raises(mlplab.ConfigError, match="must be a table"):
        mlplab.Config.from_dict([("seed", 1)])
    with pytest.raises(mlplab.MlplabError, match="unknown data set 'iris'"):
        mlplab.generate("iris", 10, 10)
    with pytest.raises(mlplab.ConfigError, match="must be a mlplab.Config or a dict"):
        mlplab.train([1, 2], save=False)
    run = mlplab.train({"training": {"epochs": 5}}, save=False)  # a dict of settings is a config
    assert run.config.training.epochs == 5
    with pytest.raises(mlplab.DataError, match="rows have different lengths"):
        run.model.predict([[1.0, 2.0], [1.0]])


def test_junk_npz_does_not_suggest_allow_pickle(cli, tmp_path):
    np.savez(tmp_path / "objects.npz", X=np.array([[1, "a"]], dtype=object), y=np.array([1]))
    (tmp_path / "junk.npz").write_bytes(b"not an archive at all")
    for name in ("objects.npz", "junk.npz"):
        code, _, err = cli("train", "--data", tmp_path / name, "--epochs", "2", "--out", tmp_path / "r")
        assert one_error_line(code, err) and "allow_pickle" not in err and "could run code" in err, err


def test_plot_and_resume_say_which_data_file_they_read(cli, csv_file, tmp_path):
    out = tmp_path / "run"
    assert cli("train", "--data", csv_file, "--target", "y", "--epochs", "4", "--checkpoint-every", "2",
               "--out", out, "--quiet")[0] == 0
    pytest.importorskip("matplotlib")
    code, shown, err = cli("plot", "boundary", out, "--out", tmp_path / "b.png")
    assert code == 0, err
    assert f"data: reading {csv_file} (named in the run)" in shown
    csv_file.write_text(csv_file.read_text() + "0.5,0.5,1\n")
    code, shown, err = cli("plot", "boundary", out, "--out", tmp_path / "b.png")
    assert "it has changed since the run was trained" in shown
    code, shown, err = cli("train", "--resume", out, "--epochs", "6")
    assert code == 2 and "has changed since the run started" in err
