"""All-or-nothing publication: staged beside the destination, published together, the marker
last; a failure before commit leaves the old files; one job per output at a time."""

import errno
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from pipeline import signals
from pipeline.publish import OutputBusy, OutputError, Publication, lock_path


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


def _old_set(folder):
    for name, text in {"s.csv": "old", "s.csv.rejects.csv": "old rejects", "s.csv.manifest.json": "old m"}.items():
        (folder / name).write_text(text)


def test_commit_publishes_every_file_marker_last_and_removes_stale_outputs(tmp_path):
    _old_set(tmp_path)
    out, rejects, marker = tmp_path / "s.csv", tmp_path / "s.csv.rejects.csv", tmp_path / "s.csv.manifest.json"
    shap = tmp_path / "elsewhere" / "shap.csv"
    with Publication([out, rejects, shap], marker=marker) as pub:
        pub.write(out, lambda p: p.write_text("new"))
        pub.write(shap, lambda p: p.write_text("new shap"))
        assert out.read_text() == "old"  # nothing visible before commit
        pub.write(marker, lambda p: p.write_text("new m"))
        published = pub.commit()
        assert published[-1] == marker and sorted(published) == sorted([out, shap, marker])
    assert _listing(tmp_path) == ["elsewhere", "s.csv", "s.csv.manifest.json"]  # stale rejects gone
    assert (out.read_text(), shap.read_text(), marker.read_text()) == ("new", "new shap", "new m")
    assert _listing(shap.parent) == ["shap.csv"]


def test_an_error_before_commit_leaves_the_old_set_and_no_staging(tmp_path):
    _old_set(tmp_path)
    before = {p.name: p.read_text() for p in tmp_path.iterdir() if p.is_file()}
    with pytest.raises(RuntimeError), Publication([tmp_path / "s.csv"], marker=tmp_path / "s.csv.manifest.json") as pub:
        pub.write(tmp_path / "s.csv", lambda p: p.write_text("new"))
        raise RuntimeError("model failed")
    assert {p.name: p.read_text() for p in tmp_path.iterdir() if p.is_file()} == before


def test_a_full_disk_names_the_output_and_publishes_nothing(tmp_path):
    _old_set(tmp_path)

    def full(path):
        path.write_text("part")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OutputError, match=r"cannot write .*s\.csv: No space left on device; nothing was published"):
        with Publication([tmp_path / "s.csv"], marker=tmp_path / "s.csv.manifest.json") as pub:
            pub.write(tmp_path / "s.csv", full)
    assert (tmp_path / "s.csv").read_text() == "old"
    assert _listing(tmp_path) == ["s.csv", "s.csv.manifest.json", "s.csv.rejects.csv"]


def test_two_outputs_on_one_file_are_refused_before_anything_is_locked_or_written(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(OutputError, match="are the same file"):
        Publication([tmp_path / "s.parquet", tmp_path / "d" / ".." / "s.parquet"])
    with pytest.raises(OutputError, match="s.parquet is named twice"):
        Publication([tmp_path / "s.parquet"], marker=tmp_path / "s.parquet")
    assert _listing(tmp_path) == ["d"]


def test_an_output_that_is_a_folder_is_refused_before_anything_is_replaced(tmp_path):
    scores, rejects = tmp_path / "scores.parquet", tmp_path / "scores.parquet.rejects.parquet"
    scores.write_text("old scores")
    rejects.mkdir()  # a folder where one output (not the first replaced) would go
    with pytest.raises(OutputError, match=f"cannot write {rejects}: it is a folder"):
        Publication([scores, rejects], marker=tmp_path / "scores.parquet.manifest.json")
    assert scores.read_text() == "old scores"


def test_a_read_only_file_system_is_not_called_full(tmp_path, monkeypatch):
    """A read-only file system reports no free space: the writer's own reason is kept."""
    import collections

    import polars as pl

    fs = collections.namedtuple("fs", "f_flag f_bavail f_frsize")
    for flag, said in ((os.ST_RDONLY, "cannot write .*s.csv: writer refused;"), (0, "No space left on device")):
        monkeypatch.setattr(os, "statvfs", lambda _folder, flag=flag: fs(flag, 0, 4096))

        def refused(path):
            raise pl.exceptions.ComputeError("writer refused")

        with pytest.raises(OutputError, match=said):
            with Publication([tmp_path / "s.csv"]) as pub:
                pub.write(tmp_path / "s.csv", refused)


def test_an_unwritable_destination_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(OutputError, match="cannot write .*file/s.csv: .*file is a file, not a folder"):
        Publication([tmp_path / "file" / "s.csv"]).__enter__()


def test_a_second_job_on_the_same_output_refuses_and_the_lock_is_released(tmp_path):
    with Publication([tmp_path / "a.csv", tmp_path / "b.csv"]):
        assert lock_path(tmp_path / "b.csv").is_file()
        with pytest.raises(OutputBusy, match="b.csv is being written by another job"):
            Publication([tmp_path / "b.csv"]).__enter__()
        with Publication([tmp_path / "c.csv"]):  # another output in the same folder is free
            pass
    with Publication([tmp_path / "b.csv"]):
        pass
    assert _listing(tmp_path) == []  # lock files go with their job


def test_a_lock_file_removed_by_its_holder_is_not_trusted(tmp_path):
    holder = Publication([tmp_path / "s.csv"]).__enter__()
    stale_fd = os.open(lock_path(tmp_path / "s.csv"), os.O_RDWR)  # opened just before the holder ends
    holder.__exit__(None, None, None)
    with Publication([tmp_path / "s.csv"]) as second:
        assert lock_path(tmp_path / "s.csv").is_file()
        assert os.fstat(second._locks[0][0]).st_ino != os.fstat(stale_fd).st_ino
    os.close(stale_fd)


def test_staging_left_by_a_killed_job_is_removed_and_commit_checks_staged_files(tmp_path):
    stale = tmp_path / ".s.csv.staging-999999"
    stale.mkdir()
    (stale / "s.csv").write_text("half")
    with Publication([tmp_path / "s.csv"]) as pub:
        assert not stale.exists()
        pub.stage(tmp_path / "s.csv")
        with pytest.raises(OutputError, match="never written"):
            pub.commit()
        with pytest.raises(ValueError, match="not one of this job's outputs"):
            pub.stage(tmp_path / "other.csv")
    assert _listing(tmp_path) == []


@pytest.fixture
def handlers():
    saved, hook = {s: signal.getsignal(s) for s in signals.HANDLED}, sys.unraisablehook
    signals._state.__init__()
    signals.install()
    yield
    sys.unraisablehook = hook
    for s, h in saved.items():
        signal.signal(s, h)
    signals._state.__init__()


def test_a_signal_raises_interrupted_with_the_shell_exit_code(handlers):
    with pytest.raises(signals.Interrupted) as err:
        os.kill(os.getpid(), signal.SIGTERM)
    assert err.value.exit_code == 143 and "nothing was published" in signals.message(err.value)


def test_a_signal_during_commit_is_held_until_the_set_is_published(tmp_path, handlers):
    with pytest.raises(signals.Interrupted) as err, Publication([tmp_path / "s.csv"]) as pub:
        pub.write(tmp_path / "s.csv", lambda p: p.write_text("new"))
        with signals.deferred():
            os.kill(os.getpid(), signal.SIGINT)
            pub.commit()
    assert err.value.exit_code == 130
    assert (tmp_path / "s.csv").read_text() == "new" and _listing(tmp_path) == ["s.csv"]
    assert "already published complete" in signals.message(err.value)


def test_a_signal_swallowed_by_a_finaliser_is_delivered_again(handlers):
    class Finalised:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10_000):  # the handler runs here, inside __del__: Python must swallow it
                pass

    with pytest.raises(signals.Interrupted) as err:
        Finalised()
        for _ in range(200):
            time.sleep(0.01)
    assert err.value.exit_code == 130


def test_a_failure_caused_by_a_caught_signal_still_exits_as_interrupted(handlers, capsys):
    from pipeline.cli import _run_guarded

    def command():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.5)
        except signals.Interrupted:
            pass  # a library catching it in a C callback, then failing with its own error
        sys.exit(2)

    with pytest.raises(SystemExit) as err:
        _run_guarded(command)
    assert err.value.code == 143
    assert capsys.readouterr().err.strip().endswith("earlier outputs are untouched and work files removed")


def test_temporary_files_a_library_leaves_behind_are_removed_with_the_job(handlers, tmp_path, monkeypatch, capsys):
    import tempfile

    from pipeline.cli import _run_guarded

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    left = []

    def command():
        left.append(Path(tempfile.mkdtemp()))  # e.g. MLflow's TempDir, cut short inside its own clean-up
        (left[0] / "model.json").write_text("{}")
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.5)

    with pytest.raises(SystemExit) as err:
        _run_guarded(command)
    assert err.value.code == 130 and "interrupted by SIGINT" in capsys.readouterr().err
    assert left[0].parent.parent == tmp_path and list(tmp_path.iterdir()) == []  # its job folder, removed
    assert tempfile.tempdir == str(tmp_path)
