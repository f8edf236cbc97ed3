"""Start-up and end to end: the tutorial script against ``mlplab train``; ``mlplab --help``.

Each is a fresh interpreter (subprocess), as a user runs it; the tutorial script is the tutorial's
program with its label_map typo fixed and without the plot window.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import tempfile
from pathlib import Path

from . import Row, median_time, tutorial

REPEATS = {"tiny": 1, "quick": 3, "full": 5}

TUTORIAL = '''
import torch
import numpy
from sklearn.datasets import make_blobs
n_dim = 2
x_train, y_train = make_blobs(n_samples=80, n_features=n_dim, centers=[[1,1],[-1,-1],[1,-1],[-1,1]],
                              shuffle=True, cluster_std=0.3)
x_test, y_test = make_blobs(n_samples=20, n_features=n_dim, centers=[[1,1],[-1,-1],[1,-1],[-1,1]],
                            shuffle=True, cluster_std=0.3)
def label_map(y_, from_, to_):
    y = numpy.copy(y_)
    for f in from_:
        y[y_ == f] = to_
    return y
y_train = label_map(label_map(y_train, [0, 1], 0), [2, 3], 1)
y_test = label_map(label_map(y_test, [0, 1], 0), [2, 3], 1)
x_train, x_test = torch.FloatTensor(x_train), torch.FloatTensor(x_test)
y_train, y_test = torch.FloatTensor(y_train), torch.FloatTensor(y_test)
NEURAL_NET
model = NeuralNet(2, 5)
criterion = torch.nn.BCELoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.03)
model.eval()
print('Before Training, test loss is {}'.format(criterion(model(x_test).squeeze(), y_test).item()))
for epoch in range(EPOCHS):
    model.train()
    optimizer.zero_grad()
    train_loss = criterion(model(x_train).squeeze(), y_train)
    if epoch % 100 == 0:
        print('Train loss at {} is {}'.format(epoch, train_loss.item()))
    train_loss.backward()
    optimizer.step()
torch.save(model.state_dict(), './model.pt')
new_model = NeuralNet(2, 5)
new_model.load_state_dict(torch.load('./model.pt'))
new_model.eval()
print(new_model(torch.FloatTensor([-1, 1])).item())
'''


def _command(args: list[str], folder: str) -> None:
    subprocess.run(args, cwd=folder, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run(size: str) -> list[Row]:
    repeats = REPEATS[size]
    epochs = 20 if size == "tiny" else 2000
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "tutorial.py"
        network = inspect.getsource(tutorial.NeuralNet)
        script.write_text(TUTORIAL.replace("NEURAL_NET", network).replace("EPOCHS", str(epochs)))
        script_time = median_time(lambda: _command([sys.executable, str(script)], folder), repeats)
        train = [sys.executable, "-m", "mlplab", "train", "--out", "run", "--force", "--quiet",
                 "--epochs", str(epochs)]
        ours = median_time(lambda: _command(train, folder), repeats)
        bare = median_time(lambda: _command([sys.executable, "-c", "pass"], folder), repeats)
        helped = median_time(lambda: _command([sys.executable, "-m", "mlplab", "--help"], folder), repeats)
    return [Row("end to end, defaults", "tutorial script", "s", script_time, ours, target="<= 1.5 s"),
            Row("mlplab --help", "python -c pass", "s", bare, helped, target="<= 0.3 s",
                note="the peer is the interpreter's own start-up")]
