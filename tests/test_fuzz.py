"""Property-based fuzzing of the CLI contract over CSV contents, flag values and checkpoint metadata.

The only assertion is the contract: exit 0 with a correct result, or exit 2 with exactly one line on
stderr starting ``mlplab: error:``, never a traceback, and the file system as it was. Runs in-process
through ``mlplab.cli.main``, derandomised (the same examples every run) and bounded in count.
"""

import contextlib
import io
import json
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import mlplab
from mlplab.checkpoint import full_digest
from mlplab.cli import main

FUZZ = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def run_cli(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(arg) for arg in args])
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 0
    return code, out.getvalue(), err.getvalue()


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(folder.rglob("*"))}


def assert_contract(code, err, before, after, ok):
    """Exit 0 and ``ok()``; or exit 2, one clean line, nothing changed on disk."""
    assert "Traceback" not in err
    event(f"exit {code}")  # shown by --hypothesis-show-statistics: both outcomes must be reached
    if code == 0:
        ok()
    else:
        assert code == 2, (code, err)
        assert err.startswith("mlplab: error: ") and err.count("\n") == 1, err
        assert after == before, "a failed command changed the file system"


# --- CSV contents -------------------------------------------------------------------------------

numbers = st.one_of(st.integers(-3, 3).map(str), st.floats(-10, 10, allow_nan=False).map(lambda v: f"{v:.3g}"))
oddities = st.sampled_from(["", "nan", "inf", "-1e39", "1e308", "yes", "no", "café", " 2 ", "1,5", '"q"', "9" * 25])
names = st.sampled_from(["a", "b", "y", "c d", "", "ü"])


@st.composite
def csv_texts(draw):
    """Mostly well-formed tables (so both outcomes are reached), with odd headers, cells and rows mixed in."""
    header = draw(st.one_of(st.just(["a", "b", "y"]), st.lists(names, min_size=1, max_size=4)))
    odd_rate = draw(st.sampled_from([0, 0, 0.05, 0.3]))
    rows = []
    for _ in range(draw(st.integers(0, 14))):
        width = len(header) + (draw(st.sampled_from([-1, 1])) if draw(st.integers(0, 19)) == 0 else 0)
        rows.append([draw(oddities) if draw(st.floats(0, 1)) < odd_rate else draw(numbers) for _ in range(width)])
    labels = draw(st.sampled_from(["numbers", "classes", "text"]))
    if labels != "numbers" and header and header[-1] == "y":
        for row in rows:
            if len(row) == len(header):
                row[-1] = draw(st.sampled_from(["0", "1"] if labels == "classes" else ["yes", "no", "maybe"]))
    return "\n".join([",".join(header), *(",".join(row) for row in rows)]) + "\n"


@FUZZ
@given(text=csv_texts())
def test_fuzz_csv_contents(text):
    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        (root / "d.csv").write_text(text, encoding="utf-8")
        before = snapshot(root)
        code, out, err = run_cli("train", "--data", root / "d.csv", "--target", "y", "--hidden", "3",
                                 "--epochs", "2", "--out", root / "run", "--quiet")

        def ok():
            model = mlplab.load(root / "run")
            assert model.meta["complete"] and model.meta["epoch"] == 2
            assert out.strip() == str(root / "run")

        assert_contract(code, err, before, snapshot(root), ok)


# --- flag values --------------------------------------------------------------------------------

FLAGS = ["--dataset", "--n-train", "--n-test", "--noise", "--classes", "--test-fraction", "--val-fraction",
         "--scale", "--hidden", "--activation", "--dropout", "--init", "--task", "--dtype", "--optimizer", "--lr",
         "--momentum", "--weight-decay", "--l1", "--batch-size", "--schedule", "--step-size", "--gamma",
         "--clip-grad", "--patience", "--log-every", "--checkpoint-every", "--snapshot-every", "--seed",
         "--target", "--features", "--format"]
values = st.sampled_from(["-1", "0", "1", "2", "3", "0.5", "1e-9", "10" + "0" * 12, "nan", "inf", "1e400", "x", "",
                          "blobs", "spiral", "moons", "linear", "relu", "tanh", "adam", "sgd", "cosine", "step",
                          "plateau", "standard", "minmax", "regression", "multiclass", "float64", "svg"])
switches = st.sampled_from(["--nesterov", "--early-stopping", "--plots"])


@FUZZ
@given(flags=st.lists(st.tuples(st.sampled_from(FLAGS), values), max_size=4), extra=st.lists(switches, max_size=2))
def test_fuzz_flag_values(flags, extra):
    if "--plots" in extra:
        pytest.importorskip("matplotlib")
    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        before = snapshot(root)
        args = [part for flag, value in flags for part in (flag, value)]
        code, out, err = run_cli("train", *args, *extra, "--epochs", "2", "--out", root / "run", "--quiet")

        def ok():
            model = mlplab.load(root / "run")
            assert model.meta["epoch"] <= 2 and out.strip() == str(root / "run")

        assert_contract(code, err, before, snapshot(root), ok)


# --- checkpoint metadata ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fuzz_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz") / "run"
    config = mlplab.Config.from_dict({"training": {"epochs": 20}, "data": {"scale": "standard"}})
    mlplab.train(config, out=folder)
    return folder


def paths_of(value, prefix=()):
    """Every path into a JSON value: ("architecture", "hidden_sizes", 0), ..."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths_of(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths_of(item, (*prefix, index))


json_values = st.one_of(st.none(), st.booleans(), st.integers(-2, 30000), st.floats(allow_nan=False),
                        st.sampled_from(["", "binary", "multiclass", "regression", "relu", "float64", "standard"]),
                        st.lists(st.integers(-1, 3), max_size=3), st.just({}))


@FUZZ
@given(data=st.data())
def test_fuzz_checkpoint_metadata(fuzz_run, data):
    payload = torch.load(fuzz_run / "checkpoint.pt", weights_only=True)
    meta = json.loads(payload["meta"])
    path = data.draw(st.sampled_from([p for p in paths_of(meta) if p and p[0] != "weights_sha256"]))
    new = data.draw(json_values)
    target = meta
    for key in path[:-1]:
        target = target[key]
    assume(json.dumps(target[path[-1]]) != json.dumps(new))  # a change: the same value is no tampering
    target[path[-1]] = new
    resign = data.draw(st.booleans())
    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        shutil.copytree(fuzz_run, root / "run")
        payload["meta"] = json.dumps(meta)
        if resign:  # a consistent checksum: only the schema and shape checks stand between it and a network
            payload["sha256"] = full_digest(payload["meta"], meta["weights_sha256"])
        torch.save(payload, root / "run" / "checkpoint.pt")
        before = snapshot(root)
        code, out, err = run_cli("predict", root / "run", "--", "-1", "1")
        _, reference, _ = run_cli("predict", fuzz_run, "--", "-1", "1")

        def ok():
            assert resign
            if path[0] not in ("classes", "preprocessor", "architecture", "task"):
                assert out == reference  # a change to the bookkeeping must not change the answer
            else:
                assert out.strip().splitlines()[-1].startswith(("predicted label: ", "prediction: "))

        assert_contract(code, err, before, snapshot(root), ok)
