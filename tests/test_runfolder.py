"""A run folder is all or nothing: atomic commits (SIGKILL at every write and rename), exclusive
claims, and folders that are not mlplab's are never written."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mlplab.runfolder import COMMIT, RunFolder, RunFolderError, commit, file_mode, read_bytes, recover, resolve

NAMES = ["checkpoint.pt", "model.pt", "history.json", "config.toml", "run.json"]
# A save as the trainer does it, in a process that imports no torch (fast), killed at fault point N.
SAVE = """
import sys
from pathlib import Path
from mlplab.runfolder import commit
commit(Path(sys.argv[1]), {name: b"new " + name.encode() for name in sys.argv[2:]}, remove=["snapshots.pt"])
"""


def state(folder: Path) -> str:
    """'old' or 'new' as a reader sees the folder; fails on a mixture."""
    seen = set()
    for name in NAMES:
        path = resolve(folder / name)
        seen.add(read_bytes(path).split()[0].decode())
    snapshots = resolve(folder / "snapshots.pt")
    seen.add("old" if snapshots is not None and snapshots.exists() else "new")
    assert len(seen) == 1, f"a mixture of states: {seen}"
    return seen.pop()


def test_sigkill_at_every_write_and_rename_leaves_the_old_state_or_the_new(tmp_path):
    outcomes = []
    for point in range(1, 40):
        folder = tmp_path / f"run{point}"
        folder.mkdir()
        for name in [*NAMES, "snapshots.pt"]:
            (folder / name).write_bytes(b"old " + name.encode())
        env = {**os.environ, "MLPLAB_FAULT_AT": str(point)}
        result = subprocess.run([sys.executable, "-c", SAVE, str(folder), *NAMES], env=env, capture_output=True)
        if result.returncode == 0:
            assert state(folder) == "new" and not (folder / COMMIT).exists()
            break
        assert result.returncode == -signal.SIGKILL, result.stderr.decode()
        seen = state(folder)  # what a reader sees right after the crash
        outcomes.append(seen)
        recover(folder)  # what the next writer does first
        assert state(folder) == seen
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            [*NAMES] + (["snapshots.pt"] if seen == "old" else []))
    # every write and rename was a kill point: the staging writes (old state) and the moves (new state)
    assert len(outcomes) >= 2 * len(NAMES) + 2
    assert "old" in outcomes and "new" in outcomes


def test_a_failed_write_keeps_the_previous_state_and_leaves_nothing(tmp_path, monkeypatch):
    import errno

    import mlplab.runfolder as runfolder

    (tmp_path / "run.json").write_bytes(b"old")
    real = runfolder.write_synced

    def full_disk(path, data, mode=None):
        if path.name == "model.pt":
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data, mode)

    monkeypatch.setattr(runfolder, "write_synced", full_disk)
    with pytest.raises(RunFolderError, match="the disk is full; the previous state of the folder is kept"):
        commit(tmp_path, {"run.json": b"new", "model.pt": b"new"})
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"] and (tmp_path / "run.json").read_bytes() == b"old"


def test_committed_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        commit(tmp_path, {"run.json": b"{}"})
        assert file_mode() == 0o640
        assert (tmp_path / "run.json").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


@pytest.mark.parametrize("out, message", [
    ("", "must name a folder"),
    ("/", "root of the file system"),
])
def test_empty_and_root_out_are_refused(out, message):
    with pytest.raises(RunFolderError, match=message):
        RunFolder.claim(out)


def test_a_folder_that_is_not_a_run_is_never_written(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "config.toml").write_text("my own")
    with pytest.raises(RunFolderError, match="not an mlplab run"):
        RunFolder.claim(tmp_path / "mine", force=True)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["config.toml"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunFolderError, match="is a file"):
        RunFolder.claim(tmp_path / "file")
    with pytest.raises(RunFolderError, match=r"file is a file, not a folder"):
        RunFolder.claim(tmp_path / "file" / "run")


def test_a_claimed_folder_is_exclusive(tmp_path):
    first = RunFolder.claim(tmp_path / "run")
    with pytest.raises(RunFolderError, match="another mlplab process is writing"):
        RunFolder.claim(tmp_path / "run")
    first.release(discard=True)
    assert not (tmp_path / "run").exists()  # nothing was committed: nothing is left


def test_force_keeps_the_old_run_until_the_new_one_is_complete(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in [*NAMES, "snapshots.pt", "boundary.png", "notes.txt"]:
        (run / name).write_bytes(b"old")
    with pytest.raises(RunFolderError, match="already holds a run"):
        RunFolder.claim(run)
    folder = RunFolder.claim(run, force=True)
    folder.commit({name: b"periodic" for name in NAMES})
    assert all((run / name).read_bytes() == b"old" for name in NAMES)  # untouched so far
    folder.commit({name: b"final" for name in NAMES}, final=True)
    folder.release()
    assert sorted(p.name for p in run.iterdir()) == sorted([*NAMES, "notes.txt"])  # the user's file stays
    assert all((run / name).read_bytes() == b"final" for name in NAMES)


def test_an_unwritable_folder_is_found_before_training(tmp_path, monkeypatch):
    import errno

    import mlplab.runfolder as runfolder

    def read_only(path, data, mode=None):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(runfolder, "write_synced", read_only)
    with pytest.raises(RunFolderError, match="cannot write into the run folder .*: the file system is read-only"):
        RunFolder.claim(tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_full_disk_is_found_before_training(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 5000, 5000))
    with pytest.raises(RunFolderError, match="has 5.0 KB free, but saving this run needs about 1.0 MB"):
        RunFolder.claim(tmp_path / "run", needed_bytes=10**6)
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_refused(tmp_path):
    (tmp_path / "locked").mkdir(mode=0o500)
    with pytest.raises(RunFolderError, match="permission denied"):
        RunFolder.claim(tmp_path / "locked" / "run")
