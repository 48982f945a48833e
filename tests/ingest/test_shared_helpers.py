"""The small helpers ingest's modules share: durable file writes and the commit backoff."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ingest.batching import Backoff
from ingest.durable import fsync_directory, write_durably


def test_write_durably_puts_the_bytes_in_place_private_and_leaves_no_temporary(
    tmp_path: Path,
) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(b"old")
    write_durably(target, b"new", sync_directory=True)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_a_failed_write_leaves_the_old_file_as_it_was(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(b"old")
    with pytest.raises(OSError):
        write_durably(target, b"new", tmp=tmp_path / "missing" / "state.tmp")
    assert target.read_bytes() == b"old"


def test_an_exclusive_write_refuses_another_writers_temporary_file(tmp_path: Path) -> None:
    target, tmp = tmp_path / "batch", tmp_path / ".batch.tmp"
    tmp.write_bytes(b"another writer's")
    with pytest.raises(FileExistsError):
        write_durably(target, b"mine", tmp=tmp, exclusive=True)
    assert not target.exists() and tmp.read_bytes() == b"another writer's"
    write_durably(target, b"mine", tmp=tmp)  # not exclusive: the temporary is replaced
    assert target.read_bytes() == b"mine" and not tmp.exists()


def test_fsync_directory_refuses_a_file(tmp_path: Path) -> None:
    fsync_directory(tmp_path)
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(NotADirectoryError):
        fsync_directory(tmp_path / "f")


def test_backoff_doubles_up_to_its_ceiling_and_starts_again_after_a_success() -> None:
    backoff = Backoff(first_s=0.1, most_s=0.5)
    assert [backoff.wait_s() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    backoff.reset()
    assert backoff.wait_s() == 0.1
