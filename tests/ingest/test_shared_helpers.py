"""The small helpers ingest's modules share: durable file writes, the commit backoff, and the
standard-library ones from lake.spec (the Retry-After parser, pausing the cyclic GC)."""

from __future__ import annotations

import gc
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from ingest.batching import Backoff
from ingest.durable import fsync_directory, write_durably
from lake.spec import gc_paused, parse_retry_after


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


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),  # never a negative wait
        ("9999", 60.0),  # capped
        ("inf", 60.0),  # an endless wait is the cap
        ("nan", None),  # not a delay at all
        ("-inf", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # a date in the past: go now
    ],
)
def test_retry_after_is_seconds_between_zero_and_the_cap(
    header: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(header, cap=60.0) == seconds


def test_retry_after_as_an_http_date_is_the_time_left_until_it() -> None:
    header = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    waited = parse_retry_after(header, cap=60.0)
    assert waited is not None and 25.0 < waited <= 30.0  # the header has whole seconds


@pytest.fixture
def gc_enabled() -> Iterator[None]:
    """The cyclic GC on for the test, and as it was before afterwards."""
    was = gc.isenabled()
    gc.enable()
    yield
    (gc.enable if was else gc.disable)()


@pytest.mark.usefixtures("gc_enabled")
def test_gc_paused_pauses_the_collector_and_restores_it_even_after_an_error() -> None:
    with pytest.raises(KeyError), gc_paused():
        assert not gc.isenabled()
        raise KeyError("boom")
    assert gc.isenabled()
    gc.disable()  # already paused by someone else: left paused
    with gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()
    gc.enable()
