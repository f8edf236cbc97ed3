"""GridSearchCV for the estimators, with every candidate of a fold trained at once by the batched sweep.

``GridSearchCV(NeuralNetClassifier(...), grid, cv=5)`` fits candidates x folds networks one after another;
:func:`sweep_search` fits, for each fold, every candidate together (``batched.py``), scores each on the
held-out fold with the same scorer, and picks the best mean score the way GridSearchCV does (the first of
equal ranks), then refits it on all rows. Each network is trained exactly as the estimator's own ``fit``
would train it, so with an integer ``random_state`` the chosen setting and the scores are GridSearchCV's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["SearchResult", "sweep_search"]


@dataclass
class SearchResult:
    """The parts of a fitted GridSearchCV that :func:`sweep_search` gives (same names and meaning)."""

    best_params_: dict[str, Any]
    best_score_: float
    best_index_: int
    best_estimator_: Any
    cv_results_: dict[str, Any]


def sweep_search(estimator: Any, param_grid: dict[str, list[Any]], X: Any, y: Any, *, cv: Any = 5,
                 scoring: Any = None, refit: bool = True) -> SearchResult:
    """Grid-search ``estimator`` (a NeuralNetClassifier or NeuralNetRegressor) over ``param_grid`` with
    cross-validation, training each fold's candidates as one batched computation.

    Parameters
    ----------
    estimator : NeuralNetClassifier or NeuralNetRegressor
        The base estimator; give it an integer ``random_state`` (or put ``random_state`` in the grid) so the
        result is reproducible and equals GridSearchCV's.
    param_grid : dict
        Estimator parameter -> list of values, as GridSearchCV takes it (one dict; no pipelines' ``step__``
        prefixes). ``learning_rate_init``, ``alpha``, ``momentum``, ``random_state``, ``max_iter`` and
        ``n_iter_no_change`` are batched together; different ``hidden_layer_sizes`` are trained as separate
        batches. Each candidate trains for ``max_iter`` epochs (or until ``early_stopping`` stops it); the
        estimator's stop on a stalled training loss (``tol``) is not applied in the batch, so the result
        equals GridSearchCV's when no candidate would stop that way before ``max_iter``.
    X, y : array-like
        Training data (numeric).
    cv : int or cross-validation splitter
        As GridSearchCV's ``cv`` (an int means StratifiedKFold for classifiers, KFold otherwise).
    scoring : str, callable or None
        As GridSearchCV's (None: the estimator's ``score``, accuracy or R²).
    refit : bool
        Refit the best candidate on all of ``X``, ``y`` into ``best_estimator_``.

    Returns
    -------
    SearchResult
        ``best_params_``, ``best_score_``, ``best_index_``, ``best_estimator_`` and ``cv_results_``
        (``params``, ``mean_test_score``, ``std_test_score``, ``split{i}_test_score``, ``rank_test_score``).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from mlplab import NeuralNetClassifier, sweep_search
    >>> X, y = load_iris(return_X_y=True)
    >>> search = sweep_search(NeuralNetClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0),
    ...                       {"learning_rate_init": [0.001, 0.01, 0.1]}, X, y, cv=3)
    >>> search.best_params_
    {'learning_rate_init': 0.1}
    """
    import torch
    from scipy.stats import rankdata
    from sklearn.base import clone, is_classifier
    from sklearn.metrics import check_scoring
    from sklearn.model_selection import ParameterGrid, check_cv
    from sklearn.utils.validation import check_X_y

    from . import batched
    from .data import build_dataset
    from .inference import TrainedModel
    from .run import _build_module

    if getattr(estimator, "class_weight", None) is not None:
        raise ValueError("sweep_search trains without row weights; class_weight is not supported (use GridSearchCV)")
    X, y = check_X_y(X, y, dtype=[np.float64, np.float32], y_numeric=not is_classifier(estimator))
    keys = list(param_grid)
    candidates = list(ParameterGrid(param_grid))  # GridSearchCV's order (keys sorted), so ties break alike
    splitter = check_cv(cv, y, classifier=is_classifier(estimator))
    scorer = check_scoring(estimator, scoring=scoring)
    folds = list(splitter.split(X, y))
    scores = np.empty((len(candidates), len(folds)))
    for fold, (train, test) in enumerate(folds):
        estimators = [clone(estimator).set_params(**params) for params in candidates]
        members, targets = [], []
        with torch.random.fork_rng(devices=[]):
            for model in estimators:
                config = model._config(len(train), input_dtype=X.dtype)
                batched.check_batchable(config)
                target = model._target_encoder(y[train], False, None)  # as fit: classes_, a scaled target
                dataset = build_dataset(config, X[train], y[train], None, None, {"name": "arrays", "target": "y"},
                                        target, None, feature_names=[f"x{i}" for i in range(X.shape[1])])
                torch.manual_seed(config.seed)
                members.append(batched.Member(config, dataset, _build_module(config, dataset)))
                targets.append(target)
        results = [None] * len(members)
        groups: dict[Any, list[int]] = {}
        for index, member in enumerate(members):
            groups.setdefault(batched.group_key(member.config, member.dataset), []).append(index)
        for indices in groups.values():
            for index, result in zip(indices, batched.train_batched([members[i] for i in indices])):
                results[index] = result
        for index, (model, member, result) in enumerate(zip(estimators, members, results)):
            member.module.load_state_dict(result.state_dict)
            model.model_ = TrainedModel(member.module.eval(), member.dataset.task, member.dataset.classes,
                                        member.dataset.preprocessor, {"target_scaling": target.scaling})
            model.n_features_in_ = X.shape[1]
            model._state = None
            model._set_history([{name: float(values[epoch]) for name, values in result.history.items()}
                                | {"epoch": epoch + 1} for epoch in range(result.epochs)])
            scores[index, fold] = scorer(model, X[test], y[test]) if not result.diverged else np.nan
    means = scores.mean(axis=1)
    ranks = rankdata(-np.where(np.isnan(means), -np.inf, means), method="min").astype(np.int32)
    best = int(ranks.argmin())
    cv_results: dict[str, Any] = {"params": candidates, "mean_test_score": means,
                                  "std_test_score": scores.std(axis=1), "rank_test_score": ranks}
    for fold in range(len(folds)):
        cv_results[f"split{fold}_test_score"] = scores[:, fold]
    for key in keys:
        cv_results[f"param_{key}"] = np.ma.MaskedArray([params[key] for params in candidates], dtype=object)
    best_estimator = clone(estimator).set_params(**candidates[best]).fit(X, y) if refit else None
    return SearchResult(candidates[best], float(means[best]), best, best_estimator, cv_results)
