"""A run folder that is all or nothing: locked while written, changed only by atomic commits, read safely.

Every save of a run (each periodic checkpoint, the final save) is one *commit*, a small redo log::

    1. write every file of the new state into RUN/.mlplab-staging-<random>/, fsync each, plus a manifest
       (the files, and the files and folders of the previous state to remove);
    2. rename that folder to RUN/.mlplab-commit          <- the commit point, one atomic rename;
    3. move each file into RUN (os.replace), remove what the manifest says, delete .mlplab-commit.

A crash before 2 leaves the previous state (the staging folder is swept away later); a crash during 3
leaves a complete .mlplab-commit, which every reader overlays on RUN (:func:`resolve`) and the next writer
finishes (:func:`recover`). So a reader sees the previous complete state or the new one, never a mixture.
A plain rename of a whole folder over RUN cannot do this: POSIX cannot rename onto a non-empty folder.

A writer holds an exclusive ``flock`` on the folder itself for as long as it trains, so two trainings
into one ``--out`` cannot interleave: the second is refused at once. Readers take no lock.

Files are read only if they are regular files under a size cap (:mod:`mlplab.saferead`). This module
imports no torch.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .config import MlplabError
from .saferead import MiB, UnreadableFile, read_bytes, read_json, read_text  # noqa: F401 - re-exported

__all__ = ["RunFolder", "RunFolderError", "commit", "file_mode", "read_bytes", "recover", "resolve"]

COMMIT = ".mlplab-commit"
STAGING = ".mlplab-staging-"
PENDING = ".mlplab-pending"  # --force: the replacement run lives here until it is complete
MANIFEST = "manifest.json"
RUN_FILES = ("checkpoint.pt", "model.pt", "history.json", "config.toml", "run.json", "snapshots.pt")
FIGURE_STEMS = ("data", "boundary", "history", "network", "neurons", "activations", "animation")
FIGURE_SUFFIXES = (".png", ".svg", ".pdf", ".gif", ".mp4")


FAULT_ENV = "MLPLAB_FAULT_AT"  # tests only: SIGKILL this process at the Nth write/rename of a save
_fault_count = 0


class RunFolderError(MlplabError):
    """A run folder cannot be used: not mlplab's, busy, unwritable, or a file in it is unreadable."""


# --- reading: the overlay of a commit in progress ------------------------------------------------

def _manifest(folder: Path) -> dict | None:
    """The manifest of a commit in progress in ``folder``, or None."""
    path = folder / COMMIT / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(read_bytes(path, "commit manifest", 16 * MiB))
    except (ValueError, UnreadableFile):
        return None
    return manifest if isinstance(manifest, dict) else None


def resolve(path: str | Path) -> Path | None:
    """Where a run file can be read now: ``RUN/name``, or the newer copy of a commit that a crash left
    half-applied (``RUN/.mlplab-commit/name``); None when that commit removes the file."""
    path = Path(path)
    manifest = _manifest(path.parent)
    if manifest is None:
        return path
    if path.name in manifest.get("files", []) and (path.parent / COMMIT / path.name).is_file():
        return path.parent / COMMIT / path.name
    if path.name in manifest.get("remove", []):
        return None
    return path


def pending_folder(folder: Path) -> Path | None:
    """The replacement run (--force, or a resumed one) being trained in ``folder``, if there is one and
    no commit in progress already replaces it."""
    pending = folder / PENDING
    manifest = _manifest(folder)
    if manifest is not None and PENDING in manifest.get("remove_dirs", []):
        return None
    return pending if readable(pending / "checkpoint.pt") else None


def readable(path: Path) -> bool:
    """Whether run file ``path`` exists, commits in progress taken into account."""
    where = resolve(path)
    return where is not None and where.exists()


# --- writing --------------------------------------------------------------------------------------

def file_mode() -> int:
    """The permission bits a new file gets under the user's umask (0o666 & ~umask), as ``open`` gives;
    temporary files start at 0600, so mlplab applies this before renaming them into place."""
    try:  # Linux says it without changing it (os.umask would, for a moment, for every thread)
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def fault_point(label: str) -> None:
    """Tests only: with MLPLAB_FAULT_AT=N set, the Nth write or rename of a save kills the process as a
    power cut would (SIGKILL: no cleanup, no flush)."""
    global _fault_count
    target = os.environ.get(FAULT_ENV)
    if not target:
        return
    _fault_count += 1
    if _fault_count == int(target):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:  # some file systems cannot fsync a folder; the renames are still atomic
        pass
    finally:
        os.close(descriptor)


def write_synced(path: Path, data: bytes, mode: int | None = None) -> None:
    """Create ``path`` (which must not exist), write ``data``, fsync."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if mode is None else mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view):]
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def commit(folder: str | Path, files: dict[str, bytes], remove: Iterable[str] = (),
           remove_dirs: Iterable[str] = ()) -> None:
    """Replace the state of ``folder`` by ``files`` (name -> bytes) in one atomic step, removing the
    files ``remove`` and folders ``remove_dirs`` of the previous state. The caller holds the lock."""
    folder = Path(folder)
    recover(folder)
    staging = folder / f"{STAGING}{secrets.token_hex(6)}"
    mode = file_mode()
    try:
        fault_point("mkdir staging")
        os.mkdir(staging)
        for name, data in files.items():
            fault_point(f"write {name}")
            write_synced(staging / name, data, mode)
        fault_point("write manifest")
        manifest = {"files": list(files), "remove": sorted(set(remove) - set(files)),
                    "remove_dirs": sorted(remove_dirs)}
        write_synced(staging / MANIFEST, json.dumps(manifest).encode())
        _fsync_folder(staging)
        fault_point("commit")
        os.rename(staging, folder / COMMIT)
        _fsync_folder(folder)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise RunFolderError(_write_failure(folder, error)) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    recover(folder)


def recover(folder: str | Path) -> None:
    """Finish a commit a crash interrupted (roll it forward) and sweep away unfinished staging folders.
    Only a writer holding the folder's lock calls this."""
    folder = Path(folder)
    for stale in folder.glob(f"{STAGING}*"):
        shutil.rmtree(stale, ignore_errors=True)
    pending = folder / COMMIT
    if not pending.is_dir():
        return
    manifest = _manifest(folder)
    if manifest is not None:
        try:
            for name in manifest.get("files", []):
                if (pending / name).is_file():
                    fault_point(f"move {name}")
                    os.replace(pending / name, folder / name)
            for name in manifest.get("remove", []):
                fault_point(f"remove {name}")
                (folder / name).unlink(missing_ok=True)
            for name in manifest.get("remove_dirs", []):
                shutil.rmtree(folder / name, ignore_errors=True)
            _fsync_folder(folder)
        except OSError as error:
            raise RunFolderError(_write_failure(folder, error)) from None
    fault_point("finish")
    shutil.rmtree(pending, ignore_errors=True)  # every file in it has been moved: only the manifest is left


def _write_failure(folder: Path, error: OSError) -> str:
    reason = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
              errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied"}.get(
        error.errno, error.strerror or str(error))
    return f"could not save the run in {folder}: {reason}; the previous state of the folder is kept"


# --- the writer's side: claim a folder, lock it, probe it ---------------------------------------

def old_run_files(folder: Path, keep: Iterable[str] = ()) -> list[str]:
    """The files an earlier run left in ``folder`` (run files and figures), except ``keep``. Anything
    else in the folder (a user's notes) is not mlplab's and is never removed."""
    keep = set(keep)
    names = []
    for entry in folder.iterdir() if folder.is_dir() else []:
        name = entry.name
        stem, suffix = os.path.splitext(name)
        if name in keep or not entry.is_file():
            continue
        if name in RUN_FILES or (stem in FIGURE_STEMS and suffix in FIGURE_SUFFIXES):
            names.append(name)
    return sorted(names)


def holds_run(folder: Path) -> bool:
    return any(readable(folder / name) for name in ("checkpoint.pt", "run.json"))


@dataclass
class RunFolder:
    """A run folder claimed for writing: ``root`` is RUN; ``where`` is where this training commits its
    periodic checkpoints (RUN itself, or RUN/.mlplab-pending when it replaces a complete run there)."""

    root: Path
    where: Path
    created: bool
    _descriptor: int | None = None

    @classmethod
    def claim(cls, out: str | Path, *, force: bool = False, resume: bool = False,
              needed_bytes: int = 0) -> RunFolder:
        """Create or open ``out`` for a training, lock it, check it may be written and has room.

        Refused: an empty or root path; a file; a folder holding anything that is not an mlplab run; a
        run without ``force`` (unless resuming); a folder another mlplab process is writing."""
        text = str(out)
        if not text.strip():
            raise RunFolderError("--out must name a folder, got an empty string")
        root = Path(out)
        absolute = root.absolute()
        if absolute == Path(absolute.anchor) or absolute.resolve() == Path(absolute.resolve().anchor):
            raise RunFolderError(f"--out {text}: refusing to use the root of the file system as a run folder")
        if root.exists() and not root.is_dir():
            raise RunFolderError(f"--out {root} is a file; give a folder for the run")
        created = False
        try:
            root.mkdir(parents=True)
            created = True
        except FileExistsError:
            if not root.is_dir():
                raise RunFolderError(f"--out {root} is a file; give a folder for the run") from None
        except OSError as error:
            raise RunFolderError(f"cannot create the run folder {root}: {_os_reason(root, error)}") from None
        folder = cls(root, root, created)
        try:
            folder._lock()
            folder._check_contents(force, resume)
            folder._probe(needed_bytes)
        except BaseException:
            folder.release(discard=True)
            raise
        return folder

    def _lock(self) -> None:
        try:
            self._descriptor = os.open(self.root, os.O_RDONLY)
        except OSError as error:
            raise RunFolderError(f"cannot open the run folder {self.root}: {_os_reason(self.root, error)}") from None
        try:
            import fcntl
        except ImportError:  # Windows: no flock; the commits are still atomic
            return
        try:
            fcntl.flock(self._descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._descriptor)
            self._descriptor = None
            raise RunFolderError(f"another mlplab process is writing the run in {self.root} right now; wait for "
                                 "it to finish, or choose another --out") from None

    def _check_contents(self, force: bool, resume: bool) -> None:
        root = self.root
        others = sorted(entry.name for entry in root.iterdir() if not entry.name.startswith(".mlplab-"))
        if resume:
            pending = pending_folder(root)
            self.where = pending or root  # an interrupted --force run is continued where it was
            return
        if holds_run(root):
            if not force:
                raise RunFolderError(f"{root} already holds a run; choose another --out, or --force to replace "
                                     "it")
            self.where = root / PENDING  # the old run stays untouched until the new one is complete
            shutil.rmtree(self.where, ignore_errors=True)  # an earlier replacement, interrupted, is dropped
            return
        if others:
            shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
            raise RunFolderError(f"--out {root} is a folder that is not an mlplab run (it holds {shown}); mlplab "
                                 "writes a run only into a new or empty folder, or over its own run with --force")

    def _probe(self, needed_bytes: int) -> None:
        """Write, fsync and remove a small file now, so an unwritable folder or a full disk is found
        before training rather than after it."""
        try:
            recover(self.root)
            self.where.mkdir(exist_ok=True)
            recover(self.where)
            probe = self.where / f"{STAGING}probe-{secrets.token_hex(4)}"
            write_synced(probe, b"mlplab write probe\n")
            probe.unlink()
        except RunFolderError:
            raise
        except OSError as error:
            raise RunFolderError(f"cannot write into the run folder {self.root}: {_os_reason(self.root, error)}") \
                from None
        free = shutil.disk_usage(self.root).free
        if needed_bytes > free:
            raise RunFolderError(f"the disk holding {self.root} has {_size(free)} free, but saving this run needs "
                                 f"about {_size(needed_bytes)}; free some space or choose another --out")

    def commit(self, files: dict[str, bytes], final: bool = False) -> None:
        """One atomic save. A final save of a replacement run goes into RUN and removes every file of
        the run it replaces (and the pending folder) in the same commit."""
        if final and self.where != self.root:
            commit(self.root, files, remove=old_run_files(self.root), remove_dirs=[PENDING])
            self.where = self.root
        else:
            commit(self.where, files, remove=old_run_files(self.where))

    def has_commits(self) -> bool:
        return holds_run(self.where)

    def release(self, discard: bool = False) -> None:
        """Unlock. With ``discard``, remove what this training left that holds no saved state: the
        folder it created (if nothing was committed) or its pending replacement folder."""
        if discard:
            if self.where != self.root:
                shutil.rmtree(self.where, ignore_errors=True)
            elif self.created and not holds_run(self.root):
                shutil.rmtree(self.root, ignore_errors=True)
        if self._descriptor is not None:
            os.close(self._descriptor)  # closing drops the flock
            self._descriptor = None


def _os_reason(path: Path, error: OSError) -> str:
    if error.errno == errno.ENOTDIR:
        parent = next((p for p in [path, *path.parents] if p.exists() and not p.is_dir()), None)
        return f"{parent} is a file, not a folder" if parent else "a part of the path is a file"
    return {errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
            errno.ENOSPC: "the disk is full"}.get(error.errno, error.strerror or str(error))


def _size(n_bytes: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n_bytes < 1000 or unit == "TB":
            return f"{n_bytes:.0f} {unit}" if unit == "bytes" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1000
    return f"{n_bytes:.1f} TB"
