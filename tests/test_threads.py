"""Threads chosen by the work of a step; the setting is put back afterwards; the estimators keep float32."""

import numpy as np
import pytest
import torch

import mlplab
from mlplab.threads import WORK_PER_THREAD, choose_threads, step_flops, thread_limit


def test_small_steps_get_one_thread_and_large_ones_more(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setattr("mlplab.threads.cores", lambda: 4)
    assert choose_threads([2, 5, 1], 80) == 1  # the tutorial
    assert choose_threads([20, 64, 64, 1], 1024) == 1  # 34 MFLOP a step
    assert step_flops([20, 64, 64, 1], 1024) < WORK_PER_THREAD
    assert choose_threads([784, 1024, 1024, 10], 1024) == 4  # capped at the cores
    assert choose_threads([2, 5, 1], 80, requested=3) == 3  # --threads wins
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert choose_threads([784, 1024, 1024, 10], 1024) is None  # the environment chose: leave torch alone


def test_training_runs_with_the_chosen_threads_and_restores_the_setting(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    seen = []

    from mlplab.training import Callback

    class Spy(Callback):
        def on_epoch_end(self, state):
            seen.append(torch.get_num_threads())

    before = torch.get_num_threads()
    with thread_limit(2):  # a caller's own setting, whatever the machine
        config = mlplab.Config.from_dict({"training": {"epochs": 3}})
        mlplab.train(config, save=False, callbacks=[Spy()])
        assert torch.get_num_threads() == 2
        config.training.threads = 2
        mlplab.train(config, save=False, callbacks=[Spy()])
    assert seen == [1, 1, 1, 2, 2, 2]
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_estimators_compute_in_the_inputs_precision(dtype):
    pytest.importorskip("sklearn")
    rs = np.random.RandomState(0)
    X, y = rs.normal(size=(60, 3)).astype(dtype), rs.randint(0, 2, 60)
    clf = mlplab.NeuralNetClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(X, y)
    assert next(clf.model_.module.parameters()).dtype == getattr(torch, np.dtype(dtype).name)
    assert clf.predict_proba(X).dtype == np.float64
    forced = mlplab.NeuralNetClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0, dtype="float64").fit(
        X.astype(np.float32), y)
    assert next(forced.model_.module.parameters()).dtype == torch.float64
    from_ints = mlplab.NeuralNetClassifier(hidden_layer_sizes=(4,), max_iter=3).fit(X.astype(int), y)
    assert from_ints.model_.module.linear_1.weight.dtype == torch.float64
