"""The training loop against the tutorial's own loop, seeds, determinism."""

import numpy as np
import pytest
import torch
from conftest import NeuralNet, quick_config
from sklearn.datasets import make_blobs

import mlplab

CENTERS = [[1, 1], [-1, -1], [1, -1], [-1, 1]]


def tutorial_reference(seed: int, epochs: int = 2000):
    """The tutorial program, seeded: returns (test loss before, [train loss per epoch], model)."""
    rs = np.random.RandomState(seed)
    x_train, y_train = make_blobs(n_samples=80, n_features=2, centers=CENTERS, shuffle=True, cluster_std=0.3,
                                  random_state=rs)
    x_test, y_test = make_blobs(n_samples=20, n_features=2, centers=CENTERS, shuffle=True, cluster_std=0.3,
                                random_state=rs)
    y_train, y_test = (np.where(y >= 2, 1, 0) for y in (y_train, y_test))
    x_train, x_test = torch.FloatTensor(x_train), torch.FloatTensor(x_test)
    y_train, y_test = torch.FloatTensor(y_train), torch.FloatTensor(y_test)
    torch.manual_seed(seed)
    model = NeuralNet(2, 5)
    criterion = torch.nn.BCELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.03)
    model.eval()
    test_loss_before = criterion(model(x_test).squeeze(), y_test).item()
    losses = []
    for _ in range(epochs):
        model.train()
        optimizer.zero_grad()
        train_output = model(x_train)
        train_loss = criterion(train_output.squeeze(), y_train)
        losses.append(train_loss.item())
        train_loss.backward()
        optimizer.step()
    return test_loss_before, losses, model


def test_loss_curve_equals_the_tutorial_loop(tutorial_run):
    before, losses, reference = tutorial_reference(seed=0)
    ours = [record["train_loss"] for record in tutorial_run.history]
    assert len(ours) == 2000
    np.testing.assert_allclose(ours, losses, rtol=0, atol=1e-6)
    assert tutorial_run.initial_test_loss == pytest.approx(before, abs=1e-6)
    for name, tensor in reference.state_dict().items():
        torch.testing.assert_close(tutorial_run.model.module.state_dict()[name], tensor, rtol=0, atol=1e-5)


def test_defaults_reach_high_accuracy_on_most_seeds():
    accuracies = []
    for seed in range(10):
        config = mlplab.Config()
        config.seed = seed
        accuracies.append(mlplab.train(config, save=False).metrics["test"]["accuracy"])
    print("test accuracy per seed:", accuracies)
    assert sum(accuracy >= 0.95 for accuracy in accuracies) >= 9, accuracies


def test_same_seed_identical_weights_and_history_different_seed_differs():
    config = quick_config(epochs=150)
    first = mlplab.train(config, save=False)
    second = mlplab.train(config, save=False)
    assert first.history == second.history
    for name, tensor in first.model.module.state_dict().items():
        assert torch.equal(tensor, second.model.module.state_dict()[name])
    config.seed = 1
    third = mlplab.train(config, save=False)
    assert third.history != first.history
    assert not torch.equal(third.model.module.linear_1.weight, first.model.module.linear_1.weight)


def test_history_is_plain_json_data(tutorial_run):
    import json

    record = tutorial_run.history[0]
    assert record["epoch"] == 1
    assert {"train_loss", "train_accuracy", "test_loss", "test_accuracy"} <= set(record)
    assert json.loads(json.dumps(tutorial_run.history)) == tutorial_run.history
    saved = json.loads((tutorial_run.path / "history.json").read_text())
    assert saved == tutorial_run.history


def test_divergence_stops_with_a_clear_message():
    config = quick_config(epochs=50, **{"training.learning_rate": 1e30})
    with pytest.raises(mlplab.MlplabError, match="diverged.*learning rate"):
        mlplab.train(config, save=False)


def test_fused_optimiser_kernels_are_checked_not_guessed():
    from mlplab.training import fused_kernel_exists

    floats = [torch.zeros(3, requires_grad=True)]
    assert fused_kernel_exists(floats)  # torch >= 2.4 on the CPU
    assert not fused_kernel_exists([torch.zeros(3, dtype=torch.int64)])
    assert not fused_kernel_exists([torch.zeros(3, device="meta"), torch.zeros(3)])  # two devices
