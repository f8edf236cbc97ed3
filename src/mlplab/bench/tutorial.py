"""The tutorial's task: 2000 full-batch SGD epochs of a 2-5-1 network on 80 xor-blobs points.

Peers: the tutorial's loop as written (a Sigmoid-output module, BCELoss, torch.optim.SGD) and
scikit-learn's MLPClassifier with the same settings (sgd, lr 0.03, no momentum, full batch, no
penalty). mlplab: ``fit`` on the same data and initial weights, doing the same work per epoch (the
update and the train loss, no evaluation split). The loss curves must agree to 1e-5.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ..config import Config
from ..data import generate
from ..model import MLP
from ..training import fit
from . import Row, median_time

EPOCHS = {"tiny": 20, "quick": 2000, "full": 2000}
REPEATS = {"tiny": 1, "quick": 3, "full": 7}


class NeuralNet(torch.nn.Module):
    """The tutorial's network, as written there."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.linear_1 = torch.nn.Linear(input_size, hidden_size)
        self.relu = torch.nn.ReLU()
        self.linear_2 = torch.nn.Linear(hidden_size, 1)
        self.sigmoid = torch.nn.Sigmoid()

    def forward(self, input_tensor):
        return self.sigmoid(self.linear_2(self.relu(self.linear_1(input_tensor))))


def tutorial_loop(x_train, y_train, epochs: int) -> list[float]:
    torch.manual_seed(0)
    model = NeuralNet(2, 5)
    criterion = torch.nn.BCELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.03)
    losses = []
    for _ in range(epochs):
        model.train()
        optimizer.zero_grad()
        train_loss = criterion(model(x_train).squeeze(), y_train)
        losses.append(train_loss.item())
        train_loss.backward()
        optimizer.step()
    return losses


def mlplab_fit(x_train, y_train, epochs: int) -> list[float]:
    from ..run import new_training_state, training_step

    config = Config()
    config.training.epochs = epochs
    torch.manual_seed(0)
    state = new_training_state(MLP(2, [5], 1), config)
    fit(state, x_train, y_train, config.training, "binary",
        step=training_step(state, config, "binary", x_train, y_train))
    return [record["train_loss"] for record in state.history]


def sklearn_fit(x_train, y_train, epochs: int) -> None:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(hidden_layer_sizes=(5,), solver="sgd", learning_rate_init=0.03, momentum=0.0,
                          nesterovs_momentum=False, batch_size=len(x_train), max_iter=epochs, alpha=0.0,
                          shuffle=False, tol=0.0, n_iter_no_change=epochs + 1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x_train, y_train)


def run(size: str) -> list[Row]:
    epochs, repeats = EPOCHS[size], REPEATS[size]
    x, y, _, _ = generate("xor-blobs", 80, 20, seed=0)
    x_train, y_train = torch.FloatTensor(x), torch.FloatTensor(y)
    per_epoch = 1e6 / epochs
    tutorial = median_time(lambda: tutorial_loop(x_train, y_train, epochs), repeats) * per_epoch
    ours = median_time(lambda: mlplab_fit(x_train, y_train, epochs), repeats) * per_epoch
    sklearn = median_time(lambda: sklearn_fit(x, y, epochs), repeats) * per_epoch
    difference = float(np.max(np.abs(np.subtract(tutorial_loop(x_train, y_train, epochs),
                                                 mlplab_fit(x_train, y_train, epochs)))))
    note = f"loss curves differ by at most {difference:.1e}"
    return [Row("tutorial 2-5-1, 2000 epochs", "tutorial loop", "us/epoch", tutorial, ours,
                target="<= 20 us/epoch", note=note),
            Row("tutorial 2-5-1, 2000 epochs", "sklearn MLPClassifier sgd", "us/epoch", sklearn, ours)]
