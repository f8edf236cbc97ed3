"""How the command line reads: grouped help, one spelling for output files, runs listed by date and
found by name, config files that repeat a run from any folder."""

import json
import re

QUICK = ["--epochs", "20", "--quiet"]


def test_train_help_is_grouped_with_choices_defaults_and_examples(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    code, out, _ = cli("train", "--help")
    assert code == 0
    headings = [line[:-1] for line in out.splitlines() if re.fullmatch(r"[a-z]+:", line)]
    assert headings == ["options", "data", "model", "training", "run", "examples"]
    for text in ("--optimizer {sgd,adam,adamw,rmsprop}", "--lr LR", "(default: 0.03; 0.001 with --data)",
                 "--data FILE", "--epochs N", "(default: 2000; 300 with --data)",
                 "--early-stopping, --no-early-stopping", "--hidden N [N ...]", "--scale {none,standard,minmax}",
                 "--out DIR, --output DIR", "--checkpoint-every N", "(default: off)", "mlplab train --data"):
        assert text in out, text
    assert not re.search(r"\b[A-Z]+\.[A-Z_]+\b", out)  # no DATA.DATASET-style metavars
    assert "(default: None)" not in out


def test_output_files_take_out_or_output(cli, tutorial_run, tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("x1,x2\n-1,1\n1,1\n")
    for flag in ("--out", "--output"):
        code, _, err = cli("predict", tutorial_run.path, "--input", rows, flag, tmp_path / f"p{flag}.csv")
        assert code == 0, err
        code, _, err = cli("plot", "activations", flag, tmp_path / f"a{flag}.png")
        assert code == 0, err
    assert (tmp_path / "p--out.csv").read_text() == (tmp_path / "p--output.csv").read_text()
    code, out, err = cli("train", "--output", tmp_path / "r", *QUICK)
    assert code == 0 and out.strip() == str(tmp_path / "r"), err
    code, _, err = cli("predict", tutorial_run.path, "--input", rows, "--out", tmp_path / "no" / "p.csv")
    assert code == 2 and err.startswith("mlplab: error: --out ") and "does not exist" in err


def test_options_after_the_double_dash_are_named(cli, tutorial_run):
    code, _, err = cli("explain", tutorial_run.path, "--", "-1", "1", "--label", "1")
    assert code == 2 and len(err.splitlines()) == 1
    assert "--label comes after `--`" in err and "put options before it" in err


def test_runs_are_listed_by_date_and_found_by_name(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("b-second", "a-third", "c-first"):
        assert cli("train", "--out", f"runs/{name}", *QUICK)[0] == 0
    for name, created in (("c-first", "2026-01-02T03:04:05+00:00"), ("b-second", "2026-02-01T00:00:00+00:00"),
                          ("a-third", "2026-03-01T00:00:00+00:00")):
        meta = json.loads((tmp_path / "runs" / name / "run.json").read_text())
        meta["created"] = created
        (tmp_path / "runs" / name / "run.json").write_text(json.dumps(meta))
    code, out, err = cli("runs")
    assert code == 0, err
    header, *rows = out.splitlines()
    assert header.split()[:3] == ["name", "date", "data"]
    assert [row.split()[0] for row in rows] == ["c-first", "b-second", "a-third"]
    assert re.search(r"\b2026-0[12]-0[12] \d\d:\d\d\b", rows[0])
    code, out, err = cli("show", "c-first")  # what `runs` printed
    assert code == 0 and "data: xor-blobs" in out, err
    code, out, err = cli("predict", "a-third", "--", "-1", "1")
    assert code == 0 and "P(label 1)" in out, err
    code, _, err = cli("show", "nothing-here")
    assert code == 2 and "mlplab runs" in err
    code, out, _ = cli("runs", tmp_path / "runs")  # another folder: names with it, so they work as paths
    assert out.splitlines()[1].split()[0] == str(tmp_path / "runs" / "c-first")


def test_config_toml_repeats_a_run_from_any_folder(cli, tmp_path, monkeypatch):
    data = tmp_path / "project"
    data.mkdir()
    (data / "d.csv").write_text("a,b,y\n" + "".join(f"{i % 7},{(i * 3) % 5},{int(i % 7 > 3)}\n" for i in range(60)))
    monkeypatch.chdir(data)
    code, _, err = cli("train", "--data", "d.csv", "--target", "y", "--optimizer", "adam", "--out", "r", *QUICK)
    assert code == 0, err
    saved = (data / "r" / "config.toml").read_text()
    assert f'path = "{data / "d.csv"}"' in saved  # absolute
    for absent in ("dataset =", "n_train =", "momentum =", "nesterov =", "step_size =", "gamma ="):
        assert absent not in saved, absent  # settings without effect on this run are left out
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, _, err = cli("train", "--config", data / "r" / "config.toml", "--out", "again", *QUICK)
    assert code == 0, err
    assert (elsewhere / "again" / "history.json").read_text() == (data / "r" / "history.json").read_text()
    # a user's config file names its data relative to itself
    (data / "mine.toml").write_text('[data]\npath = "d.csv"\ntarget = "y"\n[training]\nepochs = 5\n')
    code, _, err = cli("train", "--config", data / "mine.toml", "--out", "mine", "--quiet")
    assert code == 0, err
