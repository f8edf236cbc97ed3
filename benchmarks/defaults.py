"""`python benchmarks/defaults.py [--seeds 5] [--only iris wine]`: mlplab's defaults for a data file
against MLPClassifier/MLPRegressor's defaults, the table in the README.

Nine data sets, each written to CSV as a user would have it: scikit-learn's bundled iris, wine,
breast_cancer, digits and diabetes (regression, target in raw units), two of mlplab's generators
(moons, a 3-arm spiral), a generated mixed table (numbers with gaps, text columns, a text target) and
friedman1 in raw units (regression, target in the thousands). For each seed the rows are split 75/25
(stratified for classes), the same split for both; mlplab trains from the CSV with no settings but
``--data``/``--test-data``/``--target`` (``mlplab.train(Config.from_dict(...))``, the CLI's path);
scikit-learn gets the same rows as numbers (text one-hot encoded, nothing else: its defaults).
Prints test accuracy (classes) or R^2 (regression), mean and standard deviation over the seeds, the
median fit time of each and their ratio (mlplab's includes reading the CSV and fitting the scaler and
one-hot encoding, as a user's `train` does; scikit-learn's is ``fit`` on ready arrays), the mean epochs
early stopping let mlplab run, and whether any mlplab run predicted a single class for every test row
(collapse).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import datasets as sk
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor

import mlplab


def _bundled(loader):
    def make(seed: int = 0) -> pd.DataFrame:
        frame = loader(as_frame=True).frame
        return frame.rename(columns={"target": "y"})
    return make


def _generated(name: str, n: int, **options):
    def make(seed: int = 0) -> pd.DataFrame:
        x, y, _, _ = mlplab.generate(name, n, 1, seed=100, **options)
        return pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "y": y})
    return make


def mixed(seed: int = 0, n: int = 1200) -> pd.DataFrame:
    """A customer table: numbers in raw units (some missing), two text columns, a text target."""
    rs = np.random.RandomState(7)
    age = rs.uniform(18, 80, n).round()
    income = rs.lognormal(10.5, 0.5, n).round(-2)
    plan = rs.choice(["basic", "plus", "pro"], n)
    city = rs.choice(["Seoul", "Busan", "Incheon", "Daegu"], n)
    visits = rs.poisson(5, n)
    score = (0.04 * (age - 50) + (income - 40000) / 20000 + np.select([plan == "pro", plan == "plus"], [1.5, 0.5], 0)
             - 0.3 * (visits - 5) + np.where(city == "Seoul", 0.8, 0) + rs.normal(0, 0.5, n))
    label = np.select([score > 1.0, score < -0.5], ["upgrade", "churn"], "stay")
    frame = pd.DataFrame({"age": age, "income": income, "plan": plan, "city": city, "visits": visits, "y": label})
    frame.loc[rs.rand(n) < 0.05, "age"] = np.nan  # gaps a real export has
    frame.loc[rs.rand(n) < 0.05, "city"] = None
    return frame


def friedman(seed: int = 0) -> pd.DataFrame:
    x, y = sk.make_friedman1(n_samples=1000, noise=1.0, random_state=3)
    frame = pd.DataFrame(x * 100, columns=[f"x{i}" for i in range(x.shape[1])])  # features in raw units too
    frame["y"] = 5000 + 300 * y
    return frame


DATASETS = {
    "iris": _bundled(sk.load_iris),
    "wine": _bundled(sk.load_wine),
    "breast_cancer": _bundled(sk.load_breast_cancer),
    "digits": _bundled(sk.load_digits),
    "diabetes": _bundled(lambda **kw: sk.load_diabetes(scaled=False, **kw)),
    "moons": _generated("moons", 500, noise=0.25),
    "spiral-3": _generated("spiral", 900, n_classes=3),
    "mixed (text)": mixed,
    "friedman1 (raw units)": friedman,
}


def _numbers(train: pd.DataFrame, test: pd.DataFrame):
    """What a scikit-learn user does at least: one-hot the text, fill gaps with the median."""
    both = pd.get_dummies(pd.concat([train, test]).drop(columns="y"), dtype=float)
    both = both.fillna(both.iloc[: len(train)].median())
    return both.iloc[: len(train)].to_numpy(), both.iloc[len(train):].to_numpy()


def one(frame: pd.DataFrame, seed: int, folder: Path) -> dict[str, float]:
    regression = frame["y"].dtype.kind == "f"
    train, test = train_test_split(frame, test_size=0.25, random_state=seed,
                                   stratify=None if regression else frame["y"])
    train.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)
    config = mlplab.Config.from_dict({"seed": seed, "data": {"path": str(folder / "train.csv"),
                                                             "test_path": str(folder / "test.csv"),
                                                             "target": "y"}})
    started = time.perf_counter()
    run = mlplab.train(config, save=False)
    ours_seconds = time.perf_counter() - started
    headline = "r2" if regression else "accuracy"
    ours = run.metrics["test"][headline]
    test_features = pd.read_csv(folder / "test.csv").drop(columns="y")
    collapsed = not regression and len(set(run.model.predict(test_features).tolist())) == 1
    x_train, x_test = _numbers(train, test)
    peer = (MLPRegressor if regression else MLPClassifier)(random_state=seed)
    started = time.perf_counter()
    peer.fit(x_train, train["y"].to_numpy())
    theirs_seconds = time.perf_counter() - started
    return {"ours": ours, "theirs": peer.score(x_test, test["y"].to_numpy()), "ours_s": ours_seconds,
            "theirs_s": theirs_seconds, "collapsed": collapsed, "headline": headline, "epochs": len(run.history)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--only", nargs="+", choices=sorted(DATASETS))
    args = parser.parse_args()
    # One thread each, for mlplab and scikit-learn alike: small networks gain nothing from more, and on a
    # shared, oversubscribed machine OpenMP's spinning barriers made a 10-128-64-1 step take 0.5 s.
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)
    warnings.simplefilter("ignore", ConvergenceWarning)
    print("| data set | rows x cols | metric | mlplab defaults | MLP* defaults | mlplab fit | MLP* fit | "
          "fit ratio | mlplab epochs | collapse |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    means = []
    for name in args.only or DATASETS:
        frame = DATASETS[name]()
        results = []
        with tempfile.TemporaryDirectory() as folder:
            for seed in range(args.seeds):
                results.append(one(frame, seed, Path(folder)))
        ours, theirs = (np.array([r[key] for r in results]) for key in ("ours", "theirs"))
        means.append((ours.mean(), theirs.mean()))
        # Medians of the interleaved fits (one seed: ours, then theirs): the machine's load comes and goes.
        ours_s, theirs_s = (np.median([r[key] for r in results]) for key in ("ours_s", "theirs_s"))
        print(f"| {name} | {frame.shape[0]} x {frame.shape[1] - 1} | {results[0]['headline']} | "
              f"{ours.mean():.3f} ± {ours.std():.3f} | {theirs.mean():.3f} ± {theirs.std():.3f} | "
              f"{ours_s:.2f} s | {theirs_s:.2f} s | {ours_s / theirs_s:.1f}x | "
              f"{np.mean([r['epochs'] for r in results]):.0f} | "
              f"{'YES' if any(r['collapsed'] for r in results) else 'no'} |", flush=True)
    ours_mean, theirs_mean = np.mean(means, axis=0)
    wins = sum(ours >= theirs for ours, theirs in means)
    print(f"| **mean** | | | **{ours_mean:.3f}** | **{theirs_mean:.3f}** | | | | | |")
    print(f"\nmlplab's defaults at least as good on {wins} of {len(means)} data sets")


if __name__ == "__main__":
    main()
