"""The headline: what one epoch of ``mlplab train`` costs a user, measured on whole processes.

Per-epoch cost = (time of a run of ``LONG`` epochs - time of a run of ``SHORT`` epochs) / (LONG - SHORT),
each a median over interleaved repeats of fresh processes, so start-up, data, saving and the final
metrics cancel and everything that happens per epoch (the update, the evaluation of the held-out split,
the history and its writing) is counted. Peers, measured the same way in the same run: the tutorial's
script (its loop as written) and scikit-learn's MLPClassifier with the same settings (sgd, lr 0.03, full
batch, no momentum, ``alpha=0``, ``shuffle=False``). ``mlplab train --optimizer adam`` is compared with
the default SGD run: the fast path covers Adam too.
"""

from __future__ import annotations

import inspect
import tempfile

from . import Row, tutorial
from .process import Script, cli, interleaved, median_seconds

EPOCHS = {"tiny": (2, 4), "quick": (2000, 8000), "full": (2000, 20000)}
REPEATS = {"tiny": 1, "quick": 3, "full": 7}

TUTORIAL_SCRIPT = '''
import sys
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
for epoch in range(int(sys.argv[1])):
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
"""The tutorial's program, with its label_map typo fixed, no plot window, and the epochs from argv."""

SKLEARN_SCRIPT = '''
import sys, warnings
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
centers = [[1, 1], [-1, -1], [1, -1], [-1, 1]]
x_train, y_train = make_blobs(n_samples=80, centers=centers, cluster_std=0.3, random_state=0)
x_test, y_test = make_blobs(n_samples=20, centers=centers, cluster_std=0.3, random_state=1)
epochs = int(sys.argv[1])
model = MLPClassifier(hidden_layer_sizes=(5,), solver="sgd", learning_rate_init=0.03, momentum=0.0,
                      nesterovs_momentum=False, batch_size=80, max_iter=epochs, alpha=0.0, shuffle=False,
                      tol=0.0, n_iter_no_change=epochs + 1, random_state=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    model.fit(x_train, y_train // 2)
print(model.score(x_test, y_test // 2))
'''


def tutorial_script() -> str:
    return TUTORIAL_SCRIPT.replace("NEURAL_NET", inspect.getsource(tutorial.NeuralNet))


def run(size: str) -> list[Row]:
    short, long = EPOCHS[size]
    in_process = size == "tiny"
    scripts: dict[str, Script] = {}
    for epochs in (short, long):
        scripts[f"mlplab {epochs}"] = cli("train", "--out", "run", "--force", "--epochs", epochs)
        scripts[f"adam {epochs}"] = cli("train", "--out", "run-adam", "--force", "--epochs", epochs,
                                        "--optimizer", "adam")
        scripts[f"tutorial {epochs}"] = Script(tutorial_script(), [str(epochs)])
        scripts[f"sklearn {epochs}"] = Script(SKLEARN_SCRIPT, [str(epochs)])
    with tempfile.TemporaryDirectory() as folder:
        results = interleaved(scripts, folder, REPEATS[size], in_process)
    seconds = {name: median_seconds(values) for name, values in results.items()}

    def per_epoch(name: str) -> float:  # µs; clamped so that a noisy tiny run still gives a ratio
        return max((seconds[f"{name} {long}"] - seconds[f"{name} {short}"]) / (long - short) * 1e6, 1e-3)

    ours, adam = per_epoch("mlplab"), per_epoch("adam")
    task = f"`mlplab train` per epoch ({long} vs {short} epochs)"
    return [
        Row(task, "the tutorial's script", "µs/epoch", per_epoch("tutorial"), ours, target=">= 8x, <= 25 µs"),
        Row(task, "MLPClassifier sgd, shuffle=False, alpha=0", "µs/epoch", per_epoch("sklearn"), ours,
            target=">= 2.5x"),
        Row("`mlplab train --optimizer adam` per epoch", "`mlplab train` (sgd)", "µs/epoch", ours, adam,
            target=">= 0.67x (within 1.5x)"),
        Row(f"`mlplab train` whole process, {short} epochs", "the tutorial's script", "s",
            seconds[f"tutorial {short}"], seconds[f"mlplab {short}"]),
    ]
