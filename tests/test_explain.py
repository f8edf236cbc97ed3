"""mlplab explain: the hand-derived backward pass, printed and checked against autograd."""

import numpy as np
import pytest
import torch

import mlplab
from mlplab.explain import explain, render
from mlplab.model import ACTIVATIONS, MLP
from mlplab.preprocess import Preprocessor
from mlplab.run import TrainedModel


def model_for(task, sizes, activation):
    torch.manual_seed(3)
    module = MLP(*sizes, activation=activation)
    classes = {"binary": ["no", "yes"], "multiclass": [0, 1, 2], "regression": None}[task]
    preprocessor = Preprocessor([{"name": f"x{i}", "kind": "numeric"} for i in range(sizes[0])])
    return TrainedModel(module, task, classes, preprocessor, {"config": {"training": {"learning_rate": 0.1}}})


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize(("task", "sizes", "label"), [("binary", (2, [5], 1), "yes"),
                                                      ("multiclass", (3, [4, 4], 3), 2),
                                                      ("regression", (2, [3, 5, 2], 1), 0.7)])
def test_explain_gradients_equal_autograd(activation, task, sizes, label):
    model = model_for(task, sizes, activation)
    row = np.linspace(-1, 1, sizes[0])
    explanation = explain(model, row, label)
    assert explanation.autograd_difference < 1e-6
    module = model.module.double()
    target = {"binary": torch.tensor([1.0], dtype=torch.float64), "multiclass": torch.tensor([2]),
              "regression": torch.tensor([0.7], dtype=torch.float64)}[task]
    from mlplab.model import compute_loss

    loss = compute_loss(module(torch.from_numpy(row[None, :])), target, task)
    loss.backward()
    assert explanation.loss == pytest.approx(loss.item(), abs=1e-9)
    for layer, (weight_gradient, bias_gradient), (new_w, new_b) in zip(module.linears, explanation.gradients,
                                                                     explanation.updated):
        np.testing.assert_allclose(weight_gradient, layer.weight.grad.numpy(), atol=1e-6)
        np.testing.assert_allclose(bias_gradient, layer.bias.grad.numpy(), atol=1e-6)
        np.testing.assert_allclose(new_w, layer.weight.detach().numpy() - 0.1 * layer.weight.grad.numpy(), atol=1e-9)
        np.testing.assert_allclose(new_b, layer.bias.detach().numpy() - 0.1 * layer.bias.grad.numpy(), atol=1e-9)


def test_explain_command_prints_the_tutorials_backpropagation(cli, tutorial_run):
    code, out, err = cli("explain", tutorial_run.path, "--label", "1", "--", "-1", "1")
    assert code == 0, err
    for text in ("FORWARD PASS", "z = W a0 + b", "OUTPUT sigmoid(z) = P(label 1) = 0.99", "LOSS (binary cross-entropy",
                 "BACKWARD PASS", "output error dL/dz = sigmoid(z) - y", "dL/dW", "dL/db", "passed back",
                 "largest difference from torch autograd", "ONE SGD STEP with learning rate 0.03", "new W"):
        assert text in out, text
    difference = float(out.split("autograd over every gradient is ")[1].split()[0])
    assert difference < 1e-6
    expected = tutorial_run.model.predict_proba([[-1, 1]])[0, 1]
    assert f"P(label 1) = {expected:.6f}" in out


def test_explain_without_a_label_uses_the_prediction_and_bad_input_is_refused(cli, tutorial_run):
    code, out, _ = cli("explain", tutorial_run.path, "--", "1", "1")
    assert code == 0 and "with label 0 (the model's own prediction" in out
    cases = [(["explain", tutorial_run.path, "--label", "7", "--", "1", "1"], "--label '7' is not one of"),
             (["explain", tutorial_run.path, "--", "1"], "expected 2 feature(s) per row"),
             (["explain", tutorial_run.path], "give the sample's feature values")]
    for args, message in cases:
        code, _, err = cli(*args)
        assert code == 2 and message in err, (args, err)


def test_explain_with_categorical_and_scaled_inputs(tmp_path):
    from test_files import write_mixed_csv

    write_mixed_csv(tmp_path / "train.csv")
    config = mlplab.Config.from_dict({"data": {"path": str(tmp_path / "train.csv"), "target": "label",
                                               "scale": "standard"}, "training": {"epochs": 20}})
    run = mlplab.train(config, save=False)
    explanation = explain(run.model, {"size": [1.5], "colour": ["red"], "weight": [2]}, "yes")
    assert explanation.encoded_differs and explanation.autograd_difference < 1e-6
    assert "encoded (one-hot and scaling" in render(explanation)
