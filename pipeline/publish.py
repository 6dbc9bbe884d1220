"""All-or-nothing publication of a job's output files, with a lock per output.

A job names every file it may publish (`Publication(outputs, marker)`) before it does any
work. Entering takes an exclusive lock per output (`flock` on `.<name>.lock` beside it, released
by the kernel even if the process is killed; the file is removed when the job ends): a second
job writing any of the same files refuses at once with `OutputBusy`, so two jobs never
interleave. Staging folders left by a killed job for those files are removed then, since the
lock proves no one else uses them.

Files are written into a staging folder beside their destination (`.<name>.staging-<pid>`,
same filesystem, so publishing is a rename). `commit()` runs with SIGINT/SIGTERM held: it
removes the old marker (the manifest), renames every staged file into place, removes outputs
of an earlier run that this run did not produce (a stale rejects file), and renames the marker
last. Leaving the `with` block removes the staging folders whether or not it committed, so an
error or a signal before `commit()` leaves the previous outputs untouched.

Only a hard kill (SIGKILL, power loss) inside the few renames of `commit()` can leave a mix;
the marker is then absent, which says the set is incomplete.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pipeline import signals


class OutputBusy(ValueError):
    """Another job is writing the same output file."""


class OutputError(ValueError):
    """An output cannot be written (disk full, unwritable folder); nothing was published."""


def lock_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.lock")


def staging_prefix(path: Path) -> str:
    return f".{path.name}.staging-"


class Publication:
    """Stage `outputs` and publish them together, `marker` last (see the module docstring)."""

    def __init__(self, outputs: Iterable[Path], marker: Path | None = None):
        self.marker = Path(marker).absolute() if marker is not None else None
        paths = [Path(p).absolute() for p in outputs]
        _refuse_shared_files([*paths, *([self.marker] if self.marker else [])])
        folder = next((p for p in [*paths, *([self.marker] if self.marker else [])] if p.is_dir()), None)
        if folder is not None:  # refused before any work: replacing it would fail halfway through a commit
            raise OutputError(f"cannot write {folder}: it is a folder, not a file; nothing was published")
        self.outputs = sorted({*paths, *([self.marker] if self.marker else [])})
        self._locks: list[tuple[int, Path]] = []
        self._staging: dict[Path, Path] = {}  # destination folder -> its staging folder
        self._staged: dict[Path, Path] = {}  # destination -> staged file
        self.committed = False

    def __enter__(self) -> Publication:
        with signals.deferred():  # a signal here must not leave a lock or folder behind untracked
            try:
                for path in self.outputs:
                    self._lock(path)
                for path in self.outputs:
                    self._remove_stale_staging(path)
                for folder in sorted({p.parent for p in self.outputs}):
                    name = next(p for p in self.outputs if p.parent == folder)
                    staging = folder / f"{staging_prefix(name)}{os.getpid()}"
                    _guard(staging, lambda s=staging: s.mkdir())
                    self._staging[folder] = staging
            except BaseException:
                self._release()
                raise
        return self

    def __exit__(self, *exc: object) -> None:
        with signals.deferred():
            self._release()

    def stage(self, path: Path) -> Path:
        """Where to write `path` now; it is published by `commit()`."""
        path = Path(path).absolute()
        if path not in self.outputs:
            raise ValueError(f"{path} is not one of this job's outputs")
        staged = self._staging[path.parent] / path.name
        self._staged[path] = staged
        return staged

    def write(self, path: Path, writer: Callable[[Path], Any]) -> Path:
        """Call `writer(staged_path)`; a full disk or unwritable folder becomes `OutputError`."""
        staged = self.stage(path)
        _guard(Path(path), lambda: writer(staged))
        return staged

    def commit(self) -> list[Path]:
        """Publish every staged file (the marker last) and remove this set's stale outputs."""
        missing = [str(p) for p, s in self._staged.items() if not s.is_file()]
        if missing:
            raise OutputError(f"staged output(s) never written: {', '.join(missing)}; nothing was published")
        with signals.deferred():
            if self.marker is not None:
                _guard(self.marker, lambda: self.marker.unlink(missing_ok=True))
            published = []
            for path in self.outputs:
                if path == self.marker:
                    continue
                if path in self._staged:
                    _guard(path, lambda p=path: os.replace(self._staged[p], p))
                    published.append(path)
                else:
                    _guard(path, lambda p=path: p.unlink(missing_ok=True))
            if self.marker is not None and self.marker in self._staged:
                _guard(self.marker, lambda: os.replace(self._staged[self.marker], self.marker))
                published.append(self.marker)
            for folder in self._staging:
                _fsync_dir(folder)
            self.committed = True
            signals.record_published(published)
        return published

    def _lock(self, path: Path) -> None:
        lock = lock_path(path)
        _guard(path, lambda: lock.parent.mkdir(parents=True, exist_ok=True))
        while True:
            fd = _guard(path, lambda: os.open(lock, os.O_RDWR | os.O_CREAT, 0o644))
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise OutputBusy(
                    f"{path} is being written by another job (lock {lock}); wait for it to finish and run again"
                ) from None
            if _same_file(fd, lock):
                self._locks.append((fd, lock))
                return
            os.close(fd)  # the holder removed that file as we opened it: lock the one now there

    def _remove_stale_staging(self, path: Path) -> None:
        for stale in path.parent.glob(f"{staging_prefix(path)}*"):
            shutil.rmtree(stale, ignore_errors=True)

    def _release(self) -> None:
        for staging in self._staging.values():
            shutil.rmtree(staging, ignore_errors=True)
        self._staging.clear()
        for fd, lock in self._locks:
            lock.unlink(missing_ok=True)  # while still held, so a waiter re-checks (see _same_file)
            os.close(fd)  # closing the descriptor releases the flock
        self._locks.clear()


def _same_file(fd: int, path: Path) -> bool:
    """Whether the locked descriptor is still the file at `path` (not one unlinked meanwhile)."""
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _guard(path: Path, action: Callable[[], Any]) -> Any:
    """Run a file operation; an OS or writer error names the output and says nothing was published."""
    try:
        return action()
    except (OSError, _writer_errors()) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
        blocking = next((p for p in Path(path).parents if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            reason = f"{blocking} is a file, not a folder"
        elif errno.ENOSPC != getattr(exc, "errno", None) and _disk_full(Path(path).parent):
            reason = f"No space left on device ({reason})"  # a writer that hides the OS error behind its own
        raise OutputError(f"cannot write {path}: {reason}; nothing was published") from None


def _refuse_shared_files(paths: list[Path]) -> None:
    """Two outputs of one job must be two files: the later write would silently replace the other."""
    seen: dict[Path, Path] = {}
    for path in paths:
        real = path.resolve()
        if real in seen:
            named = f"{path} is named twice" if seen[real] == path else f"{seen[real]} and {path} are the same file"
            raise OutputError(f"{named}; give each output its own path")
        seen[real] = path


def _disk_full(folder: Path, spare_bytes: int = 1 << 16) -> bool:
    """Whether the file system holding `folder` has (almost) no space left; a read-only one
    reports no free space too, and is not full."""
    try:
        fs = os.statvfs(folder)
    except OSError:
        return False
    return not fs.f_flag & os.ST_RDONLY and fs.f_bavail * fs.f_frsize < spare_bytes


def _writer_errors() -> type[Exception]:
    import polars as pl

    return pl.exceptions.PolarsError


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
