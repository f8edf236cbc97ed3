"""Input features (TensorFlow Playground's x1^2, x1*x2, sin(x1) toggles) as a data option: validated in the
config, computed by the preprocessor, saved in the checkpoint and applied again at predict."""

from __future__ import annotations

import numpy as np
import pytest

import mlplab
from mlplab.config import ConfigError, canonical_input_feature, parse_input_feature
from mlplab.preprocess import DataError, Preprocessor

ALL = ["x1", "x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)"]


def test_terms_parse_into_their_forms_with_one_spelling():
    assert parse_input_feature("x1") == ("column", ("x1",))
    assert parse_input_feature(" x1 ^ 2 ") == ("square", ("x1",))
    assert parse_input_feature("x1 * x2") == ("product", ("x1", "x2"))
    assert parse_input_feature("sin( x2 )") == ("sin", ("x2",))
    assert parse_input_feature("sin(x1") is None and parse_input_feature("x1^3") is None
    assert [canonical_input_feature(t) for t in ("x1 * x2", "sin( x1 )", "x2 ^2")] == ["x1*x2", "sin(x1)", "x2^2"]


@pytest.mark.parametrize("value, problem", [
    ([], "non-empty list"), (["x1", "cos(x1)"], r"got 'cos\(x1\)'"), (["x1*x2", "x1 * x2"], r"x1\*x2 more than once"),
    ("x1", "non-empty list")])
def test_bad_input_features_are_refused_naming_the_setting(value, problem):
    config = mlplab.Config()
    config.data.input_features = value
    with pytest.raises(ConfigError, match=problem) as error:
        config.validate()
    assert error.value.key == "data.input_features"


def test_the_preprocessor_computes_each_term_from_the_raw_columns():
    rs = np.random.RandomState(0)
    x1, x2 = rs.normal(size=7), rs.normal(size=7)
    processor = Preprocessor.fit({"x1": x1, "x2": x2}, input_features=ALL)
    expected = np.stack([x1, x2, x1**2, x2**2, x1 * x2, np.sin(x1), np.sin(x2)], axis=1)
    np.testing.assert_allclose(processor.transform({"x1": x1, "x2": x2}, np.float64), expected)
    np.testing.assert_allclose(processor.transform_matrix(np.stack([x1, x2], axis=1), np.float64), expected)
    assert processor.feature_names == ["x1", "x2"] and processor.column_names == ALL
    assert Preprocessor.from_dict(processor.to_dict()) == processor


def test_terms_on_missing_or_text_columns_are_data_errors():
    with pytest.raises(DataError, match="names no column 'x3'"):
        Preprocessor.fit({"x1": np.zeros(3), "x2": np.zeros(3)}, input_features=["x3"])
    with pytest.raises(DataError, match="needs numeric columns"):
        Preprocessor.fit({"x1": np.zeros(3), "c": np.array(["a", "b", "a"], dtype=object)},
                         input_features=["sin(c)"])


@pytest.fixture(scope="module")
def circles_run(tmp_path_factory):
    config = mlplab.Config.from_dict({"data": {"dataset": "circles", "input_features": ["x1^2", "x2^2"]},
                                      "model": {"hidden_sizes": [3]},
                                      "training": {"epochs": 300, "learning_rate": 0.3}})
    return mlplab.train(config.validate(), out=tmp_path_factory.mktemp("runs") / "circles")


def test_a_run_saves_its_input_features_and_predict_applies_them_again(circles_run):
    model = mlplab.load(circles_run.path)
    assert model.module.sizes[0] == 2 and model.feature_names == ["x1", "x2"]
    assert model.preprocessor.input_features == ["x1^2", "x2^2"]
    points = np.array([[0.1, -0.2], [0.9, 0.3], [-0.5, -0.8]])
    np.testing.assert_array_equal(model.predict_proba(points), circles_run.model.predict_proba(points))
    # the network sees the squares: feeding them by hand to the module gives the same logits
    import torch

    with torch.no_grad():
        by_hand = model.module(torch.tensor(points**2, dtype=torch.float32)).numpy()[:, 0]
    np.testing.assert_allclose(model.decision_function(points), by_hand, rtol=1e-6)
    # circles are separable in (x1^2, x2^2) even by this tiny network
    assert circles_run.metrics["test"]["accuracy"] == 1.0
    assert 'input_features = ["x1^2", "x2^2"]' in (circles_run.path / "config.toml").read_text()


def test_the_cli_flag_sets_the_option_and_refuses_bad_terms(cli, tmp_path):
    code, out, err = cli("train", "--input-features", "x1, x2, x1*x2", "--epochs", "3", "--quiet",
                         "--out", tmp_path / "run")
    assert code == 0, err
    assert mlplab.load(tmp_path / "run").preprocessor.column_names == ["x1", "x2", "x1*x2"]
    code, out, err = cli("predict", tmp_path / "run", "--", "-1", "1")
    assert code == 0 and "P(label 1)" in out
    code, out, err = cli("train", "--input-features", "x1,tan(x1)", "--epochs", "3", "--out", tmp_path / "bad")
    assert code == 2 and err.startswith("mlplab: error: --input-features must be") and len(err.splitlines()) == 1
    code, out, err = cli("train", "--input-features", "x1,x7", "--epochs", "3", "--out", tmp_path / "bad")
    assert code == 2 and "names no column 'x7'" in err and not (tmp_path / "bad").exists()
