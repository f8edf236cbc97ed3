"""Shared, seeded fixtures. Everything runs on the CPU and is deterministic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mlplab
from mlplab.cli import main


class NeuralNet(torch.nn.Module):
    """The tutorial's network, as written there (layer names included)."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.linear_1 = torch.nn.Linear(self.input_size, self.hidden_size)
        self.relu = torch.nn.ReLU()
        self.linear_2 = torch.nn.Linear(self.hidden_size, 1)
        self.sigmoid = torch.nn.Sigmoid()

    def forward(self, input_tensor):
        linear1 = self.linear_1(input_tensor)
        relu = self.relu(linear1)
        linear2 = self.linear_2(relu)
        output = self.sigmoid(linear2)
        return output


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(1234)
    np.random.seed(1234)
    yield


@pytest.fixture(scope="session")
def tutorial_run(tmp_path_factory):
    """`mlplab train` with the defaults, once for the whole session."""
    folder = tmp_path_factory.mktemp("runs") / "tutorial"
    run = mlplab.train(mlplab.Config(), out=folder)
    return run


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process: returns (exit code, stdout, stderr)."""

    def invoke(*args: str):
        try:
            main([str(arg) for arg in args])
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 0
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


def quick_config(**training) -> mlplab.Config:
    config = mlplab.Config()
    config.training.epochs = training.pop("epochs", 200)
    for key, value in training.items():
        config.set(key, value)
    return config
