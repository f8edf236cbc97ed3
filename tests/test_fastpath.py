"""The fast paths: the hand-derived backward pass against autograd, the NumPy training step against
the autograd path, when each applies, chunked inference, lazy imports, and the benchmarks in tiny size."""

import subprocess
import sys

import numpy as np
import pytest
import torch

import mlplab
from mlplab import backprop, fastpath
from mlplab.fastpath import FastPathRefused, PlainSGD, applies, refusal
from mlplab.model import ACTIVATIONS, MLP, compute_loss


def layers_of(model):
    return [(layer.weight.detach().numpy(), layer.bias.detach().numpy()) for layer in model.linears]


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize(("task", "sizes"), [("binary", [3, [4], 1]), ("multiclass", [3, [5, 4], 3]),
                                             ("regression", [2, [6, 3, 4], 1])])
def test_hand_derived_gradients_equal_autograd(activation, task, sizes):
    torch.manual_seed(0)
    model = MLP(*sizes, activation=activation, dtype="float64")
    x = torch.randn(7, sizes[0], dtype=torch.float64)
    y = {"binary": torch.randint(0, 2, (7,)).double(), "multiclass": torch.randint(0, 3, (7,)),
         "regression": torch.randn(7, dtype=torch.float64)}[task]
    weight = torch.rand(7, dtype=torch.float64)
    for w in (None, weight):
        model.zero_grad()
        loss = compute_loss(model(x), y, task, w)
        loss.backward()
        result = backprop.forward(layers_of(model), x.numpy(), activation)
        our_loss, logit_gradient = backprop.loss_and_gradient(result.logits, y.numpy(), task,
                                                              None if w is None else w.numpy())
        gradients = backprop.backward(layers_of(model), result, logit_gradient, activation)
        assert our_loss == pytest.approx(loss.item(), abs=1e-9)
        for layer, (weight_gradient, bias_gradient) in zip(model.linears, gradients):
            np.testing.assert_allclose(weight_gradient, layer.weight.grad.numpy(), atol=1e-6)
            np.testing.assert_allclose(bias_gradient, layer.bias.grad.numpy(), atol=1e-6)


CASES = [
    {},  # the tutorial
    {"model.activation": "tanh", "model.hidden_sizes": [8, 8]},
    {"model.activation": "elu", "training.batch_size": 16, "training.weight_decay": 0.01},
    {"model.activation": "sigmoid", "training.learning_rate": 0.5, "data.dataset": "blobs", "data.n_classes": 4},
    {"model.activation": "softplus", "data.dataset": "linear", "training.batch_size": 32},
    {"model.activation": "leaky_relu", "data.dataset": "moons", "data.val_fraction": 0.2},
    {"model.activation": "selu", "model.hidden_sizes": [4, 4, 4]},
    {"model.activation": "silu", "model.hidden_sizes": [6]},
    {"model.activation": "identity", "model.hidden_sizes": [3]},
    {"data.dataset": "linear", "training.learning_rate": 0.01},  # regression, full batch
]


def case_id(case: dict) -> str:
    return ",".join(f"{key.split('.')[-1]}={value}" for key, value in case.items()) or "tutorial"


@pytest.mark.parametrize("settings", CASES, ids=case_id)
def test_numpy_step_matches_the_autograd_path(settings, monkeypatch):
    runs, numpy_steps = {}, []
    original = fastpath.numpy_step
    monkeypatch.setattr(fastpath, "numpy_step", lambda *args: numpy_steps.append(1) or original(*args))
    for fast in (True, False):
        config = mlplab.Config()
        config.training.epochs = 300
        for key, value in settings.items():
            config.set(key, value)
        config.training.fast_path = fast
        runs[fast] = mlplab.train(config, save=False)
        assert len(numpy_steps) == 1, "the fast path ran for the first run only"
    fast_losses = [r["train_loss"] for r in runs[True].history]
    slow_losses = [r["train_loss"] for r in runs[False].history]
    np.testing.assert_allclose(fast_losses, slow_losses, rtol=0, atol=1e-5)
    for name, tensor in runs[False].model.module.state_dict().items():
        torch.testing.assert_close(runs[True].model.module.state_dict()[name], tensor, rtol=1e-4, atol=1e-5)
    # the held-out scores at log points: the fast path's NumPy forward against the torch inference path
    scored = [(fast, slow) for fast, slow in zip(runs[True].history, runs[False].history) if len(slow) > 4]
    assert len(scored) == 4  # epochs 1, 100, 200, 300
    for fast, slow in scored:
        assert fast.keys() == slow.keys()
        for key in slow:
            assert fast[key] == pytest.approx(slow[key], abs=2e-5), key


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_numpy_step_with_sample_weights_matches_autograd(task):
    from mlplab.data import build_dataset
    from mlplab.preprocess import TargetEncoder
    from mlplab.run import fit_dataset

    rs = np.random.RandomState(0)
    X, y = rs.normal(size=(60, 3)), rs.randint(0, 2 if task == "binary" else 3, 60)
    weights = rs.uniform(0.1, 3, 60)
    losses, optimizers = {}, {}
    for fast in (True, False):
        config = mlplab.Config.from_dict({"model": {"hidden_sizes": [5]},
                                          "training": {"epochs": 100, "learning_rate": 0.1, "fast_path": fast}})
        target = TargetEncoder(task, sorted(set(y.tolist())))
        dataset = build_dataset(config, X, y, None, None, {"name": "arrays"}, target, weights)
        run, state = fit_dataset(config, dataset)
        losses[fast] = [record["train_loss"] for record in run.history]
        optimizers[fast] = state.optimizer
    assert isinstance(optimizers[True], PlainSGD) and isinstance(optimizers[False], torch.optim.SGD)
    np.testing.assert_allclose(losses[True], losses[False], rtol=0, atol=1e-5)


def test_fast_path_selection():
    cpu = torch.device("cpu")
    assert applies(mlplab.Config(), cpu)
    for key, value in [("training.optimizer", "rmsprop"), ("model.dropout", 0.1),
                       ("training.schedule", "step"), ("training.l1", 0.01), ("training.clip_grad", 1.0),
                       ("model.activation", "gelu"), ("training.fast_path", False)]:
        config = mlplab.Config()
        config.set(key, value)
        assert not applies(config, cpu), key
    assert not applies(mlplab.Config(), torch.device("meta"))
    assert refusal(mlplab.Config(), cpu) is None
    assert "distributed" in refusal(mlplab.Config(), cpu, distributed=True)
    scheduled = mlplab.Config.from_dict({"training": {"schedule": "cosine"}})
    assert "schedule" in refusal(scheduled, cpu)
    from mlplab.run import new_training_state

    config = mlplab.Config.from_dict({"training": {"schedule": "step"}})
    assert isinstance(new_training_state(MLP(2, [5], 1), config).optimizer, torch.optim.SGD)
    assert isinstance(new_training_state(MLP(2, [5], 1), mlplab.Config()).optimizer, PlainSGD)
    run = mlplab.train(mlplab.Config.from_dict({"training": {"epochs": 5, "schedule": "step"}}), save=False)
    assert run.history[-1]["epoch"] == 5  # the fallback trains, silently


def test_the_numpy_step_refuses_what_it_cannot_serve():
    torch.manual_seed(0)
    model, x, y = MLP(2, [5], 1), torch.randn(8, 2), torch.randint(0, 2, (8,)).float()
    with pytest.raises(FastPathRefused, match="its own optimisers, not SGD"):
        fastpath.numpy_step(model, torch.optim.SGD(model.parameters(), lr=0.1), x, y, "binary")
    dropout = MLP(2, [5], 1, dropout=0.5)
    with pytest.raises(FastPathRefused, match="dropout"):
        fastpath.numpy_step(dropout, PlainSGD(dropout.parameters(), 0.1), x, y, "binary")


def test_fit_runs_the_step_it_is_given():
    """fit takes its step function: a custom one (here autograd's, counted) is what trains."""
    from mlplab.run import new_training_state
    from mlplab.training import autograd_step, fit

    torch.manual_seed(0)
    config = mlplab.Config.from_dict({"training": {"epochs": 4, "batch_size": 20, "fast_path": False}})
    state = new_training_state(MLP(2, [5], 1), config)
    inner, batches = autograd_step(state.model, state.optimizer, "binary", config.training), []

    def counted(x, y, w):
        batches.append(len(x))
        return inner(x, y, w)

    x, y = torch.randn(60, 2), torch.randint(0, 2, (60,)).float()
    fit(state, x, y, config.training, "binary", step=counted)
    assert batches == [20, 20, 20] * 4 and state.epoch == 4


def test_fast_path_checkpoints_resume_identically(tmp_path):
    config = mlplab.Config.from_dict({"training": {"epochs": 40, "batch_size": 16, "checkpoint_every": 10}})
    full = mlplab.train(config, out=tmp_path / "full")
    config.training.epochs = 20
    mlplab.train(config, out=tmp_path / "part")
    resumed = mlplab.resume(tmp_path / "part", epochs=40)
    assert resumed.history == full.history
    saved = torch.load(tmp_path / "part" / "model.pt")
    assert all(tensor.is_contiguous() for tensor in saved.values())


def test_chunked_inference_equals_one_pass(tutorial_run):
    x = np.random.RandomState(0).normal(size=(20_000, 2))
    ours = tutorial_run.model.predict_proba(x)[:, 1]
    with torch.no_grad():
        logits = tutorial_run.model.module(torch.tensor(x, dtype=torch.float32)).double()
    np.testing.assert_allclose(ours, torch.sigmoid(logits).squeeze(-1).numpy(), rtol=1e-6)


def test_cli_start_up_does_not_import_torch():
    code = ("import sys, mlplab, mlplab.cli; mlplab.cli.build_parser(); "
            "print('torch' in sys.modules, 'sklearn' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["False", "False"]


def test_benchmarks_run_in_tiny_size(capsys):
    from mlplab import bench

    rows = bench.run("tiny", tasks=tuple(task for task in bench.TASKS if task not in bench.SPAWNING))
    tasks = " ".join(row.task for row in rows)
    for phrase in ("`mlplab train` per epoch", "--optimizer adam", "`mlplab predict --input`", "Parquet",
                   "x 20 .npz", "NeuralNetClassifier.fit", "`mlplab --help`", "busy loops", "tutorial 2-5-1",
                   "inference 1M rows", "read CSV"):
        assert phrase in tasks, phrase
    assert all(row.mlplab_value > 0 for row in rows)
    out = capsys.readouterr().out
    assert "User paths" in out and "Internal paths" in out and "loss curves differ by at most" in out


def test_bench_command_refuses_unknown_tasks(cli):
    from mlplab.bench import TASKS

    code, _, err = cli("bench", "--only", "nope")
    assert code == 2 and f"--only takes {', '.join(TASKS)}; got nope" in err


def test_prepared_full_batch_step_equals_the_general_step_even_with_huge_logits():
    """The tutorial's prepared binary step (s = 1 - 2y, s z floored at -80) against the general step
    (taken here through all-one row weights), on logits of +-hundreds: same loss, count and update."""
    import copy

    torch.manual_seed(0)
    model = MLP(2, [5], 1)
    with torch.no_grad():
        model.linears[-1].weight.mul_(1000)
    x, y = torch.randn(40, 2), (torch.rand(40) > 0.5).float()
    results = []
    for weights in (None, torch.ones(40)):
        copied = copy.deepcopy(model)
        step = fastpath.numpy_step(copied, PlainSGD(copied.parameters(), 0.01), x, y, "binary")
        logits = step.logits_of(x)
        assert np.abs(logits).max() > 100
        loss, correct = step(x, y, weights)
        results.append((loss, correct, [p.detach().clone() for p in copied.parameters()]))
    (loss, correct, parameters), (general_loss, general_correct, general_parameters) = results
    assert loss == pytest.approx(general_loss, rel=1e-5) and correct == general_correct
    for ours, theirs in zip(parameters, general_parameters):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
