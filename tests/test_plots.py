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
                                            ("network", (840, 532)), ("neurons", (835, 225)), ("data", (640, 480))])
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
             (["plot", "boundary", animated_run, "--features", "x1", "zz"], "no numeric input named zz"),
             (["plot", "boundary", animated_run, "--features", "x1", "x1"], "two different inputs")]
    for args, message in cases:
        code, _, err = cli(*args)
        assert code == 2 and message in err, (args, err)


def test_boundary_colours_agree_with_the_model(animated_run):
    run = load_run(animated_run)
    figure = plots.plot_boundary(run.model, run.splits)
    figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba())[:, :, :3].astype(float)
    ax = figure.axes[0]
    lookup = plots.probability_map()(np.linspace(0, 1, 256))[:, :3] * 255
    points = np.concatenate([x for x, _ in run.splits.values()])
    rs = np.random.RandomState(0)
    legend = ax.get_legend().get_window_extent()
    checked = 0
    for u, v in rs.uniform([-1.7, -1.7], [1.9, 1.9], size=(400, 2)):
        if np.min(np.hypot(points[:, 0] - u, points[:, 1] - v)) < 0.25:
            continue  # a data point is drawn there
        probability = run.model.predict_proba(np.array([[u, v]]))[0, 1]
        if abs(probability - 0.5) < 0.15:
            continue  # the 0.5 contour runs there
        column, row = ax.transData.transform((u, v))
        assert not legend.contains(column, row)  # the legend is outside the data
        colour = pixels[int(round(pixels.shape[0] - row)), int(round(column))]
        shown = np.argmin(((lookup - colour) ** 2).sum(axis=1)) / 255
        assert (shown > 0.5) == (probability > 0.5), (u, v, shown, probability)
        assert shown == pytest.approx(probability, abs=0.15)
        checked += 1
    assert checked > 100
    plots.require_matplotlib().close(figure)


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
        plots.require_matplotlib().close(figure)


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


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory):
    """A table with a text column, scaled inputs in very different units, and a wide hidden layer."""
    folder = tmp_path_factory.mktemp("mixed")
    rs = np.random.RandomState(0)
    n = 160
    age, ratio = rs.normal(50, 10, n), rs.normal(0.002, 0.001, n)
    colour = rs.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2])
    label = np.where((age - 50) / 10 + (ratio - 0.002) / 0.001 + (colour == "red") > 0.5, "yes", "no")
    (folder / "mixed.csv").write_text("age,ratio,colour,bought\n" + "".join(
        f"{a:.2f},{r:.6f},{c},{y}\n" for a, r, c, y in zip(age, ratio, colour, label)))
    config = {"data": {"path": str(folder / "mixed.csv"), "target": "bought", "scale": "standard"},
              "model": {"hidden_sizes": [64]}, "training": {"optimizer": "adam", "learning_rate": 0.01, "epochs": 30}}
    mlplab.train(mlplab.Config.from_dict(config), out=folder / "run")
    return load_run(folder / "run")


def test_boundary_over_two_columns_of_a_table_with_text(mixed_run, cli, tmp_path):
    figure = plots.plot_boundary(mixed_run.model, mixed_run.splits, ("age", "ratio"))
    ax = figure.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("age", "ratio")
    low, high = ax.get_xlim()
    assert 10 < low < 40 and 60 < high < 95  # years, not standardised units
    assert 0 < ax.get_ylim()[1] < 0.01
    assert "colour = red" in ax.get_title(loc="right")  # the text column held at its most frequent value
    train_points = ax.collections[-2].get_offsets()
    assert train_points[:, 0].min() > 10  # the points drawn in the same, original units
    plots.require_matplotlib().close(figure)
    code, _, err = cli("plot", "boundary", mixed_run.folder, "--features", "age", "colour",
                       "--out", tmp_path / "b.png")
    assert code == 2 and "no numeric input named colour" in err


def test_network_diagram_names_inputs_and_summarises_wide_layers(mixed_run):
    figure = plots.plot_network(mixed_run.model)
    texts = [text.get_text() for text in figure.axes[0].texts]
    assert "+55 units" in texts
    assert {"age", "ratio", "colour=blue", "colour=green", "colour=red", "P(label yes)"} <= set(texts)
    plots.require_matplotlib().close(figure)


def test_regression_boundary_has_one_colour_bar_and_history_a_log_scale(tmp_path):
    rs = np.random.RandomState(1)
    x = rs.uniform(-2, 2, size=(120, 2))
    y = 40 + 10 * x[:, 0] - 5 * x[:, 1] ** 2
    np.savez(tmp_path / "reg.npz", X=x, y=y)
    config = {"data": {"path": str(tmp_path / "reg.npz")}, "model": {"hidden_sizes": [16]},
              "training": {"optimizer": "adam", "learning_rate": 0.05, "epochs": 20}}
    mlplab.train(mlplab.Config.from_dict(config), out=tmp_path / "r")
    run = load_run(tmp_path / "r")
    figure = plots.plot_boundary(run.model, run.splits)
    assert len(figure.axes) == 2  # the plot and one colour bar
    assert figure.axes[0].get_title() == "Prediction surface"
    assert figure.axes[1].get_ylabel().startswith("predicted")
    plots.require_matplotlib().close(figure)
    # An MSE falling from 1000 to 1 spans three decades: log scale; R² from -60 up to 0.9 is cut at -1.
    falling = [{"epoch": e, "train_loss": 1000 * 0.9 ** e, "train_r2": 1 - 61 * 0.9 ** e} for e in range(1, 70)]
    figure = plots.plot_history(falling)
    assert figure.axes[0].get_yscale() == "log" and figure.axes[1].get_ylim()[0] == -1
    plots.require_matplotlib().close(figure)
    figure = plots.plot_history([{"epoch": e, "train_loss": 0.7 - 0.001 * e, "train_accuracy": 0.5}
                                 for e in range(1, 100)])
    assert figure.axes[0].get_yscale() == "linear"
    plots.require_matplotlib().close(figure)


def test_neuron_heatmaps_are_a_grid_on_one_colour_scale(tmp_path):
    mlplab.train(mlplab.Config.from_dict({"model": {"hidden_sizes": [12, 3]}, "training": {"epochs": 5}}),
                 out=tmp_path / "r")
    run = load_run(tmp_path / "r")
    figure = plots.plot_neurons(run.model, run.dataset.x_train)
    *panels, colour_bar = figure.axes
    assert len(panels) == 15 and colour_bar.get_ylabel() == "activation (relu)"
    assert len({panel.images[0].norm.vmax for panel in panels}) == 1  # one shared scale
    columns = {round(panel.get_position().x0, 3) for panel in panels}
    assert len(columns) == 8  # 12 units wrap onto a second row of the grid
    assert panels[0].get_ylabel() == "layer 1" and panels[12].get_ylabel() == "layer 2"
    plots.require_matplotlib().close(figure)


def test_plotting_leaves_the_users_backend_and_pyplot_alone(tmp_path):
    """A notebook's backend is the user's: drawing and saving a figure neither switches it nor imports
    pyplot (whose figure manager would then hold mlplab's figures)."""
    code = ("import sys, matplotlib; matplotlib.use('pdf'); import mlplab; from mlplab import plots; "
            "run = mlplab.train(mlplab.Config.from_dict({'training': {'epochs': 20}}), save=False); "
            f"plots.save(plots.plot_history(run.history), {str(tmp_path / 'h.png')!r}); "
            "print(matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["pdf", "False"], result.stderr
    assert (tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
