import numpy as np
import pytest
from sklearn.datasets import make_blobs

from mlplab import generate
from mlplab.data import GENERATORS

CENTERS = [[1, 1], [-1, -1], [1, -1], [-1, 1]]


def tutorial_label_map(y_, from_, to_):
    """The tutorial's label_map, with its `t_` typo fixed."""
    y = np.copy(y_)
    for f in from_:
        y[y_ == f] = to_
    return y


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_xor_blobs_is_the_tutorials_make_blobs(seed):
    rs = np.random.RandomState(seed)
    x_train, y_train = make_blobs(n_samples=80, n_features=2, centers=CENTERS, shuffle=True, cluster_std=0.3,
                                  random_state=rs)
    x_test, y_test = make_blobs(n_samples=20, n_features=2, centers=CENTERS, shuffle=True, cluster_std=0.3,
                                random_state=rs)
    y_train = tutorial_label_map(tutorial_label_map(y_train, [0, 1], 0), [2, 3], 1)
    y_test = tutorial_label_map(tutorial_label_map(y_test, [0, 1], 0), [2, 3], 1)
    ours = generate("xor-blobs", 80, 20, seed=seed)
    for got, expected in zip(ours, (x_train, y_train, x_test, y_test)):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generators_shapes_labels_and_seed(name):
    x_train, y_train, x_test, y_test = generate(name, 50, 30, seed=3)
    assert x_train.shape == (50, 2) and x_test.shape == (30, 2)
    assert y_train.shape == (50,) and y_test.shape == (30,)
    assert np.all(np.isfinite(x_train))
    again = generate(name, 50, 30, seed=3)
    other = generate(name, 50, 30, seed=4)
    for a, b in zip((x_train, y_train, x_test, y_test), again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(x_train, other[0])
    if name == "linear":
        assert y_train.dtype.kind == "f"
    else:
        assert y_train.dtype.kind == "i"
        expected = {"blobs": 3}.get(name, 2)
        assert set(y_train.tolist()) | set(y_test.tolist()) == set(range(expected))


def test_class_count_option():
    _, y, _, _ = generate("blobs", 200, 10, n_classes=5, seed=0)
    assert sorted(set(y.tolist())) == [0, 1, 2, 3, 4]
    _, y, _, _ = generate("spiral", 300, 10, n_classes=3, seed=0)
    assert sorted(set(y.tolist())) == [0, 1, 2]
    _, y, _, _ = generate("gaussian-quantiles", 300, 10, n_classes=3, seed=0)
    assert np.bincount(y).tolist() == [100, 100, 100]
