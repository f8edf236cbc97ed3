"""Tasks, architectures, optimisers, schedules, early stopping: the library API."""

import numpy as np
import pytest
import torch
from conftest import quick_config

import mlplab
from mlplab.model import ACTIVATIONS, MLP

SPIRAL = {"data": {"dataset": "spiral", "n_train": 800, "n_test": 200, "noise": 0.1},
          "model": {"hidden_sizes": [32, 32]}, "training": {"optimizer": "adam", "learning_rate": 0.01, "epochs": 500}}


def test_spiral_two_arms_readme_config():
    run = mlplab.train(mlplab.Config.from_dict(SPIRAL), save=False)
    assert run.metrics["test"]["accuracy"] >= 0.95


def test_four_class_blobs_is_multiclass_with_softmax():
    config = mlplab.Config.from_dict({"data": {"dataset": "blobs", "n_classes": 4, "n_train": 400, "n_test": 100},
                                      "model": {"hidden_sizes": [16]},
                                      "training": {"optimizer": "adam", "learning_rate": 0.01, "epochs": 200}})
    run = mlplab.train(config, save=False)
    assert run.model.task == "multiclass" and run.model.classes == [0, 1, 2, 3]
    assert run.model.module.sizes == [2, 16, 4]
    assert run.metrics["test"]["accuracy"] >= 0.95
    probabilities = run.model.predict_proba(np.zeros((3, 2)))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)


def test_regression_of_a_smooth_function(tmp_path):
    rs = np.random.RandomState(0)
    x = rs.uniform(-2, 2, size=(1000, 2))
    y = np.sin(2 * x[:, 0]) * np.cos(x[:, 1])
    np.savez(tmp_path / "wave.npz", X=x, y=y)
    config = mlplab.Config.from_dict({"data": {"path": str(tmp_path / "wave.npz"), "scale": "standard"},
                                      "model": {"hidden_sizes": [64, 64], "activation": "tanh"},
                                      "training": {"optimizer": "adam", "learning_rate": 0.01, "epochs": 500}})
    run = mlplab.train(config, save=False)
    assert run.model.task == "regression"
    assert run.metrics["test"]["r2"] >= 0.95
    with pytest.raises(mlplab.MlplabError, match="no class probabilities"):
        run.model.predict_proba(x[:2])


def test_linear_dataset_is_regression():
    config = quick_config(epochs=300, **{"data.dataset": "linear", "training.optimizer": "adam",
                                         "training.learning_rate": 0.05})
    run = mlplab.train(config, save=False)
    assert run.model.task == "regression" and run.metrics["test"]["r2"] > 0.9
    assert {"train_loss", "test_loss", "test_mse", "test_mae", "test_r2"} <= set(run.history[-1])


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_trains(activation):
    config = quick_config(epochs=100, **{"model.activation": activation, "training.optimizer": "adam",
                                         "training.learning_rate": 0.05, "model.hidden_sizes": [8]})
    run = mlplab.train(config, save=False)
    assert run.history[-1]["train_loss"] < run.history[0]["train_loss"]
    assert isinstance(run.model.module.activation, ACTIVATIONS[activation])


@pytest.mark.parametrize("training", [
    {"optimizer": "sgd", "momentum": 0.9, "nesterov": True},
    {"optimizer": "adam", "learning_rate": 0.01},
    {"optimizer": "adamw", "learning_rate": 0.01, "weight_decay": 0.01},
    {"optimizer": "rmsprop", "learning_rate": 0.01, "momentum": 0.5},
    {"optimizer": "sgd", "learning_rate": 0.3, "l1": 0.001, "clip_grad": 0.5},
    {"optimizer": "adam", "learning_rate": 0.01, "batch_size": 16},
])
def test_optimisers_reduce_the_loss(training):
    config = quick_config(epochs=150)
    for key, value in training.items():
        config.set(f"training.{key}", value)
    run = mlplab.train(config, save=False)
    assert run.history[-1]["train_loss"] < 0.8 * run.history[0]["train_loss"]


def test_optimizer_types_and_settings():
    from mlplab.training import build_optimizer

    model = MLP(2, [3], 1)
    config = mlplab.Config().training
    config.optimizer, config.momentum, config.nesterov = "sgd", 0.9, True
    sgd = build_optimizer(model, config)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["nesterov"] and sgd.defaults["momentum"] == 0.9
    config.optimizer, config.weight_decay = "adamw", 0.05
    adamw = build_optimizer(model, config)
    assert isinstance(adamw, torch.optim.AdamW) and adamw.defaults["weight_decay"] == 0.05


def test_schedules_change_the_learning_rate():
    step = mlplab.train(quick_config(epochs=30, **{"training.schedule": "step", "training.step_size": 10,
                                                   "training.gamma": 0.5}), save=False)
    assert [step.history[i]["lr"] for i in (0, 9, 10, 20)] == pytest.approx([0.03, 0.03, 0.015, 0.0075])
    cosine = mlplab.train(quick_config(epochs=30, **{"training.schedule": "cosine"}), save=False)
    lrs = [record["lr"] for record in cosine.history]
    assert lrs[0] == pytest.approx(0.03) and lrs[-1] < 0.001 and all(a >= b for a, b in zip(lrs, lrs[1:]))
    plateau = mlplab.train(quick_config(epochs=200, **{
        "training.schedule": "plateau", "data.val_fraction": 0.25, "data.dataset": "moons", "data.noise": 0.4,
        "model.hidden_sizes": [64], "training.optimizer": "adam", "training.learning_rate": 0.05,
        "training.patience": 4, "training.gamma": 0.5}), save=False)
    assert plateau.history[-1]["lr"] < 0.05 and plateau.history[0]["lr"] == 0.05


def test_minibatch_shuffle_is_seeded_and_uses_the_generator():
    config = quick_config(epochs=20, **{"training.batch_size": 8})
    first, second = mlplab.train(config, save=False), mlplab.train(config, save=False)
    assert first.history == second.history
    full = mlplab.train(quick_config(epochs=20), save=False)
    assert first.history[-1]["train_loss"] != full.history[-1]["train_loss"]


def test_early_stopping_stops_and_restores_the_best_weights():
    config = mlplab.Config.from_dict({
        "data": {"dataset": "moons", "n_train": 120, "noise": 0.35, "val_fraction": 0.3},
        "model": {"hidden_sizes": [128, 128]},
        "training": {"optimizer": "adam", "learning_rate": 0.02, "epochs": 2000, "early_stopping": True,
                     "patience": 15}})
    run = mlplab.train(config, save=False)
    val_losses = [record["val_loss"] for record in run.history]
    best_epoch = int(np.argmin(val_losses)) + 1
    assert len(run.history) < 2000 and len(run.history) == best_epoch + 15
    assert "early stopping" in run.stop_reason
    assert run.metrics["val"]["loss"] == pytest.approx(min(val_losses), abs=1e-6)


def test_dropout_and_init_choices():
    config = quick_config(epochs=5, **{"model.dropout": 0.5, "model.init": "xavier_uniform",
                                       "model.hidden_sizes": [16]})
    run = mlplab.train(config, save=False)
    assert isinstance(run.model.module.dropout, torch.nn.Dropout)
    module = MLP(4, [100], 1, init="kaiming_normal")
    assert torch.all(module.linear_1.bias == 0)
    assert module.linear_1.weight.std().item() == pytest.approx((2 / 4) ** 0.5, rel=0.2)


def test_binary_loss_on_logits_equals_bce_on_sigmoid():
    from mlplab.model import compute_loss

    logits = torch.linspace(-8, 8, 50).reshape(-1, 1)
    target = (torch.arange(50) % 2).float()
    ours = compute_loss(logits, target, "binary")
    tutorial = torch.nn.BCELoss()(torch.sigmoid(logits).squeeze(), target)
    exact = torch.nn.BCELoss()(torch.sigmoid(logits.double()).squeeze(), target.double())
    assert ours.item() == pytest.approx(exact.item(), abs=1e-6)  # stable on logits ...
    assert tutorial.item() == pytest.approx(exact.item(), abs=1e-5)  # ... where float32 BCE loses digits


def test_unavailable_device_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(mlplab.MlplabError, match="no CUDA GPU"):
        mlplab.train(quick_config(**{"training.device": "cuda"}), save=False)
