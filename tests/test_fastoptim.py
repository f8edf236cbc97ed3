"""The fast path's NumPy optimisers (momentum SGD, Adam, AdamW) against torch.optim through autograd, their
torch.optim-format state, and exact resumption through checkpoints."""

import numpy as np
import pytest
import torch

import mlplab
from mlplab.fastpath import NumpyAdam, PlainSGD
from mlplab.model import MLP
from mlplab.run import new_training_state

SETTINGS = [
    {"training.optimizer": "adam", "training.learning_rate": 0.01},
    {"training.optimizer": "adam", "training.learning_rate": 0.01, "training.weight_decay": 0.01,
     "training.batch_size": 16, "data.dataset": "blobs", "data.n_classes": 3, "model.hidden_sizes": [6, 4]},
    {"training.optimizer": "adamw", "training.learning_rate": 0.01, "training.weight_decay": 0.1,
     "data.dataset": "linear", "model.activation": "tanh"},
    {"training.momentum": 0.9},
    {"training.momentum": 0.5, "training.nesterov": True, "training.weight_decay": 0.01, "training.batch_size": 32},
]


def configured(settings: dict, epochs: int = 300, **extra) -> mlplab.Config:
    config = mlplab.Config()
    config.training.epochs = epochs
    for key, value in {**settings, **extra}.items():
        config.set(key, value)
    return config


def ids(settings: dict) -> str:
    return ",".join(f"{key.split('.')[-1]}={value}" for key, value in settings.items())


@pytest.mark.parametrize("settings", SETTINGS, ids=ids)
def test_numpy_optimizers_match_torch_optim_through_autograd(settings):
    runs = {fast: mlplab.train(configured(settings, **{"training.fast_path": fast}), save=False)
            for fast in (True, False)}
    losses = {fast: [record["train_loss"] for record in run.history] for fast, run in runs.items()}
    np.testing.assert_allclose(losses[True], losses[False], rtol=0, atol=1e-5)
    for name, tensor in runs[False].model.module.state_dict().items():
        torch.testing.assert_close(runs[True].model.module.state_dict()[name], tensor, rtol=1e-4, atol=1e-5)


def test_each_optimizer_gets_the_fast_path():
    def optimizer(**settings):
        return new_training_state(MLP(2, [5], 1), configured(settings)).optimizer

    assert isinstance(optimizer(**{"training.optimizer": "adam"}), NumpyAdam)
    assert isinstance(optimizer(**{"training.optimizer": "adamw"}), NumpyAdam)
    assert isinstance(optimizer(**{"training.momentum": 0.9}), PlainSGD)
    assert isinstance(optimizer(**{"training.optimizer": "rmsprop"}), torch.optim.RMSprop)
    assert isinstance(optimizer(**{"training.optimizer": "adam", "training.fast_path": False}), torch.optim.Adam)


@pytest.mark.parametrize("settings", [SETTINGS[1], SETTINGS[4]], ids=ids)
def test_state_dict_has_torch_optims_layout_and_values(settings):
    """After the same steps, the NumPy optimiser's state_dict equals torch.optim's (keys, shapes, values),
    and torch.optim loads it."""
    states = {}
    for fast in (True, False):
        config = configured(settings, epochs=7, **{"training.fast_path": fast})
        run_state = mlplab.run.fit_dataset(config, mlplab.data.load_dataset(config))[1]
        states[fast] = run_state.optimizer.state_dict()
    assert states[True]["state"].keys() == states[False]["state"].keys()
    for index, entry in states[False]["state"].items():
        assert states[True]["state"][index].keys() == entry.keys()
        for key, value in entry.items():
            torch.testing.assert_close(states[True]["state"][index][key].float(), value.float(), rtol=1e-4, atol=1e-6)
    torch_optimizer = new_training_state(MLP(2, [6, 4], 3) if "blobs" in str(settings) else MLP(2, [5], 1),
                                         configured(settings, **{"training.fast_path": False})).optimizer
    torch_optimizer.load_state_dict(states[True])


@pytest.mark.parametrize("settings", [SETTINGS[0], SETTINGS[3]], ids=ids)
def test_fast_path_resume_is_exact(tmp_path, settings):
    """A run saved at epoch 20 and resumed to 40 ends bit-identical to one run straight to 40: the
    optimiser state (moments, step count) round-trips through checkpoint.pt."""
    config = configured(settings, epochs=40, **{"training.checkpoint_every": 10, "training.batch_size": 16})
    full = mlplab.train(config, out=tmp_path / "full")
    config.training.epochs = 20
    mlplab.train(config, out=tmp_path / "part")
    resumed = mlplab.resume(tmp_path / "part", epochs=40)
    assert resumed.history == full.history
    for name, tensor in full.model.module.state_dict().items():
        assert torch.equal(resumed.model.module.state_dict()[name], tensor), name


def test_training_flushes_subnormal_floats_and_puts_the_mode_back():
    """During fit subnormal results are flushed to zero on this thread (Adam's moments of a dead unit
    would otherwise decay into them and stick, 10-100x slower); before and after, IEEE as usual."""
    from mlplab.training import Callback, _flushing_subnormals

    seen = []

    class Probe(Callback):
        reads_scores_every_epoch = False

        def on_epoch_end(self, state):
            seen.append(_flushing_subnormals())

    half_tiny = np.float32(np.finfo(np.float32).tiny) * np.float32(0.5)
    assert not _flushing_subnormals() and half_tiny > 0
    config = mlplab.Config.from_dict({"training": {"epochs": 3, "optimizer": "adam"}})
    mlplab.train(config, save=False, callbacks=[Probe()])
    assert seen == [True, True, True]
    assert not _flushing_subnormals()
    torch.set_flush_denormal(True)  # a user's own setting is kept
    try:
        mlplab.train(config, save=False)
        assert _flushing_subnormals()
    finally:
        torch.set_flush_denormal(False)


def test_training_keeps_older_objects_out_of_full_collections_and_gives_them_back():
    """gc.freeze during fit (a full pass over torch's ~170k objects cost 126 ms mid-run), unfreeze after;
    a process that froze objects itself keeps its frozen set as it was."""
    import gc

    from mlplab.training import Callback

    counts = []

    class Probe(Callback):
        reads_scores_every_epoch = False

        def on_epoch_end(self, state):
            counts.append(gc.get_freeze_count())

    assert gc.get_freeze_count() == 0
    mlplab.train(mlplab.Config.from_dict({"training": {"epochs": 2}}), save=False, callbacks=[Probe()])
    assert len(counts) == 2 and all(count > 1000 for count in counts)
    assert gc.get_freeze_count() == 0
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        mlplab.train(mlplab.Config.from_dict({"training": {"epochs": 2}}), save=False)
        assert gc.get_freeze_count() > 0.99 * frozen  # not unfrozen (a few frozen objects are freed)
    finally:
        gc.unfreeze()
