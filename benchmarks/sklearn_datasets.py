"""`python benchmarks/sklearn_datasets.py`: NeuralNetClassifier against MLPClassifier on scikit-learn's
bundled data sets (the table in the README): same layer sizes, optimiser, learning rate, batch and
epoch budget; mean test accuracy over 5 stratified 70/30 splits and mean fit time after a warm-up."""

import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlplab import NeuralNetClassifier

warnings.simplefilter("ignore", ConvergenceWarning)
NeuralNetClassifier(max_iter=2).fit(*load_iris(return_X_y=True))  # warm-up: the first optimiser's imports
print("| data set | mlplab | MLPClassifier | mlplab fit | MLPClassifier fit |")
print("|---|---|---|---|---|")
for loader in (load_iris, load_wine, load_breast_cancer, load_digits):
    X, y = loader(return_X_y=True)
    scores = {"ours": [], "theirs": []}
    times = {"ours": [], "theirs": []}
    for seed in range(5):
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
        for name, estimator in (("ours", NeuralNetClassifier(hidden_layer_sizes=(100,), random_state=seed)),
                                ("theirs", MLPClassifier(hidden_layer_sizes=(100,), random_state=seed))):
            pipeline = make_pipeline(StandardScaler(), estimator)
            started = time.perf_counter()
            pipeline.fit(X_train, y_train)
            times[name].append(time.perf_counter() - started)
            scores[name].append(pipeline.score(X_test, y_test))
    print(f"| {loader.__name__[5:]} | {np.mean(scores['ours']):.4f} | {np.mean(scores['theirs']):.4f} | "
          f"{np.mean(times['ours']):.2f} s | {np.mean(times['theirs']):.2f} s |")
