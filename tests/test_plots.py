"""Figures: valid, non-blank images of the expected size; the boundary's colours agree with the model;
one edge per weight; animation frames; no matplotlib unless a command plots."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageSequence

import mlplab
from mlplab import plots
from mlplab.report import load_run

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def animated_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plots") / "run"
    config = mlplab.Config.from_dict({"training": {"epochs": 600, "learning_rate": 0.1, "snapshot_every": 100}})
    mlplab.train(config, out=folder)
    return folder


def assert_image(path, size=(640, 480)):
    image = Image.open(path)
    image.verify()
    image = Image.open(path).convert("RGB")
    if size:
        assert image.size == size
    pixels = np.asarray(image)
    assert pixels.std() > 10 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # not blank
    return pixels


@pytest.mark.parametrize(("kind", "size"), [("boundary", (640, 480)), ("history", (1024, 480)),
                                            ("network", (660, 532)), ("neurons", (900, 240)), ("data", (640, 480))])
def test_each_run_plot_writes_a_valid_image(cli, animated_run, tmp_path, kind, size):
    out = tmp_path / f"{kind}.png"
    code, stdout, err = cli("plot", kind, animated_run, "--out", out)
    assert code == 0, err
    assert f"wrote {out}" in stdout
    assert_image(out, size)


def test_plots_without_a_run_and_other_formats(cli, tmp_path):
    code, _, err = cli("plot", "activations", "--out", tmp_path / "act.png")
    assert code == 0, err
    assert_image(tmp_path / "act.png", None)
    code, _, err = cli("plot", "data", "--dataset", "spiral", "--n-train", "300", "--out", tmp_path / "spiral.svg")
    assert code == 0, err
    assert (tmp_path / "spiral.svg").read_text().lstrip().startswith("<?xml")
    code, _, err = cli("plot", "data", "--dataset", "moons", "--out", tmp_path / "moons.pdf")
    assert code == 0 and (tmp_path / "moons.pdf").read_bytes().startswith(b"%PDF")


def test_bad_plot_requests(cli, tmp_path, animated_run):
    cases = [(["plot", "boundary"], "needs a run folder"),
             (["plot", "history", animated_run, "--format", "bmp"], "--format must be one of png, svg, pdf"),
             (["plot", "data", "--out", tmp_path / "x.jpg"], "figures are written as .png, .svg or .pdf"),
             (["plot", "animate", tmp_path / "nothing"], "does not exist"),
             (["plot", "boundary", animated_run, "--features", "x1", "zz"], "no numeric input named zz")]
    for args, message in cases:
        code, _, err = cli(*args)
        assert code == 2 and message in err, (args, err)


def test_boundary_colours_agree_with_the_model(animated_run):
    run = load_run(animated_run)
    figure = plots.plot_boundary(run.model, run.splits)
    figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba())[:, :, :3].astype(float)
    ax = figure.axes[0]
    colormap = plt_colormap()
    lookup = colormap(np.linspace(0, 1, 256))[:, :3] * 255
    points = np.concatenate([x for x, _ in run.splits.values()])
    rs = np.random.RandomState(0)
    legend = ax.get_legend().get_window_extent()
    checked = 0
    for u, v in rs.uniform([-1.7, -1.7], [1.9, 1.9], size=(400, 2)):
        if np.min(np.hypot(points[:, 0] - u, points[:, 1] - v)) < 0.25:
            continue  # a data point is drawn there
        probability = run.model.predict_proba(np.array([[u, v]]))[0, 1]
        if abs(probability - 0.5) < 0.15:
            continue  # the white 0.5 contour runs there
        column, row = ax.transData.transform((u, v))
        if legend.contains(column, row):
            continue  # the legend box covers the heatmap there
        colour = pixels[int(round(pixels.shape[0] - row)), int(round(column))]
        shown = np.argmin(((lookup - colour) ** 2).sum(axis=1)) / 255
        assert (shown > 0.5) == (probability > 0.5), (u, v, shown, probability)
        assert shown == pytest.approx(probability, abs=0.15)
        checked += 1
    assert checked > 100
    plots.require_pyplot().close(figure)


def plt_colormap():
    import matplotlib

    return matplotlib.colormaps[plots.PROBABILITY_MAP]


def test_network_diagram_draws_one_edge_per_weight():
    import torch

    from mlplab.preprocess import Preprocessor
    from mlplab.run import TrainedModel

    for sizes in ([2, [5], 1], [3, [4, 6], 2], [2, [], 1]):
        torch.manual_seed(0)
        module = mlplab.MLP(*sizes)
        model = TrainedModel(module, "binary" if sizes[2] == 1 else "multiclass", [0, 1],
                             Preprocessor([{"name": f"x{i}", "kind": "numeric"} for i in range(sizes[0])]))
        figure = plots.plot_network(model)
        edges = [line for line in figure.axes[0].lines if line.get_gid() == "edge"]
        assert len(edges) == sum(layer.weight.numel() for layer in module.linears)
        positive = [line for line in edges if line.get_color() == plots.POSITIVE]
        assert len(positive) == sum(int((layer.weight >= 0).sum()) for layer in module.linears)
        plots.require_pyplot().close(figure)


def test_animation_has_one_frame_per_snapshot(cli, animated_run, tmp_path):
    code, out, err = cli("plot", "animate", animated_run, "--out", tmp_path / "movie.gif")
    assert code == 0, err
    frames = [np.asarray(frame.convert("RGB"), dtype=float)
              for frame in ImageSequence.Iterator(Image.open(tmp_path / "movie.gif"))]
    assert len(frames) == 6  # epochs 100, 200, ..., 600
    first, last = frames[0], frames[-1]
    assert np.abs(first - last).mean() > 1  # the boundary moved
    mlplab.train(mlplab.Config.from_dict({"training": {"epochs": 5}}), out=tmp_path / "plain")
    code, _, err = cli("plot", "animate", tmp_path / "plain")
    assert code == 2 and "--snapshot-every" in err


def test_train_plots_writes_the_standard_figures(cli, tmp_path):
    code, out, err = cli("train", "--out", tmp_path / "r", "--epochs", "50", "--snapshot-every", "25", "--plots")
    assert code == 0, err
    for name in ("data.png", "boundary.png", "history.png", "network.png", "neurons.png", "animation.gif"):
        assert (tmp_path / "r" / name).is_file(), name
    assert "Figures: data.png, boundary.png" in out
    code, _, err = cli("train", "--out", tmp_path / "bad", "--plots", "--format", "gif")
    assert code == 2 and "--format must be one of" in err and not (tmp_path / "bad").exists()


def test_many_features_use_a_pca_plane(tmp_path):
    rs = np.random.RandomState(0)
    x = rs.normal(size=(200, 5))
    np.savez(tmp_path / "d.npz", X=x, y=(x[:, 0] + x[:, 3] > 0).astype(int))
    mlplab.train(mlplab.Config.from_dict({"data": {"path": str(tmp_path / "d.npz")}, "training": {"epochs": 20}}),
                 out=tmp_path / "r")
    from mlplab.report import write_figures

    written = {path.name for path in write_figures(tmp_path / "r")}
    assert {"boundary.png", "data.png", "history.png", "network.png"} <= written and "neurons.png" not in written
    run = load_run(tmp_path / "r")
    figure = plots.plot_boundary(run.model, run.splits, pca=True)
    assert figure.axes[0].get_xlabel() == "PC 1"


def test_commands_that_do_not_plot_never_import_matplotlib(tmp_path):
    code = ("import sys; from mlplab.cli import main; "
            f"main(['train', '--out', {str(tmp_path / 'r')!r}, '--epochs', '5', '--quiet']); "
            f"main(['predict', {str(tmp_path / 'r')!r}, '--', '1', '2']); "
            "print('matplotlib' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr
