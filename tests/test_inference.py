"""The one inference path: logits -> probabilities -> labels in mlplab.inference, used by every caller."""

import numpy as np
import pytest
import torch

import mlplab
from mlplab import inference
from mlplab.model import MLP, build_mlp, mlp_from_state_dict


def test_infer_is_eval_mode_and_leaves_the_module_as_it_found_it():
    torch.manual_seed(0)
    module = MLP(3, [16], 4, dropout=0.5)  # in training mode: dropout active
    x = np.random.RandomState(0).normal(size=(50, 3)).astype(np.float32)
    outputs = inference.infer(module, x, "multiclass")
    assert module.training
    module.eval()
    with torch.no_grad():
        reference = module(torch.from_numpy(x)).double().numpy()
    np.testing.assert_allclose(outputs.logits, reference, rtol=1e-6)
    np.testing.assert_allclose(outputs.probabilities, torch.softmax(torch.from_numpy(reference), 1).numpy())
    np.testing.assert_array_equal(outputs.indices, reference.argmax(axis=1))


def test_chunks_give_the_same_outputs_as_one_pass(monkeypatch):
    torch.manual_seed(0)
    module = MLP(2, [5], 1).eval()
    x = np.random.RandomState(1).normal(size=(100, 2))
    whole = inference.infer(module, x, "binary").logits
    monkeypatch.setattr(inference, "INFERENCE_CHUNK_ROWS", 7)
    np.testing.assert_array_equal(inference.infer(module, torch.from_numpy(x), "binary").logits, whole)


def test_every_caller_goes_through_infer(monkeypatch, tutorial_run, tmp_path, cli):
    """predict, predict_proba, decision_function, the estimator, training's scores, the run folder's
    confusion matrix and the CLI's predict/evaluate all reach mlplab.inference.infer."""
    from mlplab import runwriter, training

    calls = []
    original = inference.infer

    def counting(module, x, task):
        calls.append(task)
        return original(module, x, task)

    monkeypatch.setattr(inference, "infer", counting)
    monkeypatch.setattr(training, "infer", counting)
    monkeypatch.setattr(runwriter, "infer", counting)
    model = tutorial_run.model
    for method in (model.predict, model.predict_proba, model.decision_function):
        calls.clear()
        method([[-1.0, 1.0]])
        assert calls == ["binary"], method.__name__
    calls.clear()
    mlplab.train(mlplab.Config.from_dict({"training": {"epochs": 3, "fast_path": False, "log_every": 1}}),
                 out=tmp_path / "s")
    # the initial test loss, a test score per epoch (log_every 1), final train and test metrics, the confusion matrix
    assert len(calls) == 1 + 3 + 2 + 1
    calls.clear()
    mlplab.train(mlplab.Config.from_dict({"training": {"epochs": 3}}), out=tmp_path / "r")
    # between log points the test split is not scored (nothing reads it every epoch), and at epoch 1 the
    # fast path scores it with its own NumPy forward (checked against this path in test_fastpath.py)
    assert len(calls) == 1 + 0 + 2 + 1
    calls.clear()
    assert cli("predict", tmp_path / "r", "--", "-1", "1")[0] == 0
    assert calls == ["binary"]


def test_one_builder_for_new_loaded_and_plain_networks(tutorial_run):
    architecture = tutorial_run.model.meta["architecture"]
    rebuilt = build_mlp(architecture)
    plain = mlp_from_state_dict(tutorial_run.model.module.state_dict())
    assert rebuilt.sizes == plain.sizes == tutorial_run.model.module.sizes == [2, 5, 1]
    with pytest.raises(KeyError):
        build_mlp({"n_inputs": 2, "hidden_sizes": [5], "n_outputs": 1})  # activation is part of it


def test_train_and_resume_leave_the_global_random_state_alone(tmp_path):
    torch.manual_seed(7)
    before = torch.get_rng_state()
    config = mlplab.Config.from_dict({"training": {"epochs": 4, "checkpoint_every": 2, "batch_size": 16}})
    first = mlplab.train(config, out=tmp_path / "r")
    assert torch.equal(torch.get_rng_state(), before)
    mlplab.resume(tmp_path / "r", epochs=6)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(123)  # a different global state does not change the run
    again = mlplab.train(config, save=False)
    assert [r["train_loss"] for r in again.history] == [r["train_loss"] for r in first.history]


def test_runs_root_is_a_parameter(tmp_path):
    result = mlplab.train(mlplab.Config.from_dict({"training": {"epochs": 2}}), runs_root=tmp_path / "elsewhere")
    assert result.path.parent == tmp_path / "elsewhere" and (result.path / "run.json").is_file()
