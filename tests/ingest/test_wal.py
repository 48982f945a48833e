"""Tests for ingest.wal: real segment files in tmp_path, real threads, a real killed process.

Damage is done the way a crash or a bad disk would do it: by truncating or flipping bytes
of the segment files. Offsets come from `stats().bytes` before and after an append, so
the tests need no knowledge of the record header's layout.
"""

from __future__ import annotations

import random
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testkit import fill, small_disk

from ingest.wal import MAX_PAYLOAD_BYTES, WalCorruptError, WalError, WriteAheadLog

ROOT = Path(__file__).resolve().parents[2]


def payload(i: int, size: int = 40) -> bytes:
    return (f"record {i:06d} ".encode() * (size // 14 + 1))[:size]


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.wal"))


def replayed(directory: Path, after: int = -1) -> list[tuple[int, bytes]]:
    with WriteAheadLog(directory, fsync=False) as wal:
        return list(wal.replay(after))


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_round_trip_and_reopen(tmp_path: Path) -> None:
    directory = tmp_path / "wal"
    payloads = [payload(i, size) for i, size in enumerate([0, 1, 40, 1000, 70_000])]
    with WriteAheadLog(directory) as wal:
        seqs = [wal.append(p) for p in payloads]
        assert seqs == [1, 2, 3, 4, 5]
        assert list(wal.replay()) == list(zip(seqs, payloads, strict=True))
        assert list(wal.replay(after=3)) == [(4, payloads[3]), (5, payloads[4])]
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert [p.name for p in segments(directory)] == ["00000000000000000001.wal"]
    assert replayed(directory) == list(zip(seqs, payloads, strict=True))


def test_seq_continues_across_reopen(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path) as wal:
        assert [wal.append(b"a"), wal.append(b"b")] == [1, 2]
    with WriteAheadLog(tmp_path) as wal:
        assert wal.stats().next_seq == 3
        assert wal.append(b"c") == 3
        assert wal.append_many([b"d", b"e", b"f"]) == [4, 5, 6]
        assert wal.append_many([]) == []
    assert [seq for seq, _ in replayed(tmp_path)] == [1, 2, 3, 4, 5, 6]


def test_append_many_spans_segments(tmp_path: Path) -> None:
    batch = [payload(i, 100) for i in range(25)]
    with WriteAheadLog(tmp_path, segment_bytes=512, fsync=False) as wal:
        assert wal.append(b"first") == 1
        assert wal.append_many(batch) == list(range(2, 27))
        assert wal.stats().segments > 5
    assert replayed(tmp_path) == [(1, b"first"), *zip(range(2, 27), batch, strict=True)]
    # Every segment is named by its first seq and holds at most segment_bytes.
    names = [int(p.stem) for p in segments(tmp_path)]
    starts = {seq for seq, _ in replayed(tmp_path)}
    assert set(names) <= starts and names == sorted(names)
    assert all(p.stat().st_size <= 512 for p in segments(tmp_path))


def test_oversized_record_gets_its_own_segment(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path, segment_bytes=256, fsync=False) as wal:
        wal.append_many([b"a", b"x" * 1000, b"b"])
    assert [len(p) for _, p in replayed(tmp_path)] == [1, 1000, 1]
    assert len(segments(tmp_path)) == 3


def test_stats(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path, segment_bytes=300) as wal:
        empty = wal.stats()
        assert (empty.records, empty.segments, empty.oldest_seq, empty.next_seq) == (0, 1, None, 1)
        for i in range(10):
            wal.append(payload(i, 50))
        stats = wal.stats()
        assert (stats.records, stats.oldest_seq, stats.next_seq) == (10, 1, 11)
        assert stats.segments == len(segments(tmp_path)) > 1
        assert stats.bytes == sum(p.stat().st_size for p in segments(tmp_path))
        assert stats.fsyncs >= 10  # one per lone append, plus rotations


def test_group_commit_shares_fsyncs(tmp_path: Path) -> None:
    # group_window_s=0: appends that arrive while an fsync runs share the next one. That
    # alone gives ~8 appends per fsync on this 2-core machine, so no window is needed.
    threads, per_thread = 16, 200
    results: list[list[int]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads)

    with WriteAheadLog(tmp_path, group_window_s=0.0) as wal:
        before = wal.stats().fsyncs

        def work(t: int) -> None:
            start.wait()
            for i in range(per_thread):
                results[t].append(wal.append(f"{t}:{i}".encode()))

        workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        fsyncs = wal.stats().fsyncs - before
        records = dict(wal.replay())

    total = threads * per_thread
    seqs = [s for r in results for s in r]
    assert len(set(seqs)) == total
    assert sorted(records) == sorted(seqs) == list(range(1, total + 1))
    for t, mine in enumerate(results):
        assert mine == sorted(mine)  # one thread's appends are ordered
        assert [records[s] for s in mine] == [f"{t}:{i}".encode() for i in range(per_thread)]
    assert fsyncs < total / 2, f"{fsyncs} fsyncs for {total} appends"


def test_group_window_batches_more(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path, group_window_s=0.01) as wal:
        before = wal.stats().fsyncs
        workers = [threading.Thread(target=wal.append, args=(b"x",)) for _ in range(8)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert wal.stats().fsyncs - before < 8
        assert wal.stats().records == 8


# -- torn tails ---------------------------------------------------------------------------

# Each case damages the last record, which starts at `start`, has a header of `header`
# bytes and a payload of `size` bytes: (truncate to, or None, and offset to flip, or None).
Damage = Callable[[int, int, int], tuple[int | None, int | None]]
TORN: dict[str, Damage] = {
    "one header byte": lambda start, header, size: (start + 1, None),
    "mid header": lambda start, header, size: (start + header // 2, None),
    "header only": lambda start, header, size: (start + header, None),
    "mid payload": lambda start, header, size: (start + header + size // 2, None),
    "one byte short": lambda start, header, size: (start + header + size - 1, None),
    "payload byte flipped": lambda start, header, size: (None, start + header + size // 2),
    "last payload byte flipped": lambda start, header, size: (None, start + header + size - 1),
    "first header byte flipped": lambda start, header, size: (None, start),
    "last header byte flipped": lambda start, header, size: (None, start + header - 1),
}


def write_records(directory: Path, n: int, size: int = 40) -> tuple[list[bytes], int, int]:
    """n records in one segment; the last record's start offset and header size."""
    payloads = [payload(i, size) for i in range(n)]
    with WriteAheadLog(directory, fsync=False) as wal:
        for p in payloads[:-1]:
            wal.append(p)
        start = wal.stats().bytes
        wal.append(payloads[-1])
        header = wal.stats().bytes - start - size
    return payloads, start, header


def assert_recovers_to(directory: Path, kept: list[bytes]) -> None:
    expected = list(enumerate(kept, start=1))
    assert replayed(directory) == expected
    with WriteAheadLog(directory, fsync=False) as wal:
        assert wal.append(b"after") == len(kept) + 1
    assert replayed(directory) == [*expected, (len(kept) + 1, b"after")]


@pytest.mark.parametrize("damage", TORN.values(), ids=TORN.keys())
def test_torn_tail_is_truncated(tmp_path: Path, damage: Damage) -> None:
    payloads, start, header = write_records(tmp_path, 5)
    (segment,) = segments(tmp_path)
    cut, flipped = damage(start, header, len(payloads[-1]))
    if cut is not None:
        with segment.open("r+b") as f:
            f.truncate(cut)
    if flipped is not None:
        flip(segment, flipped)
    assert_recovers_to(tmp_path, payloads[:-1])
    assert segment.stat().st_size > start  # the new record went where the torn one was


def test_torn_tail_at_every_offset(tmp_path: Path) -> None:
    payloads, start, _ = write_records(tmp_path / "orig", 4, size=30)
    original = (tmp_path / "orig" / "00000000000000000001.wal").read_bytes()
    for cut in range(start, len(original)):
        directory = tmp_path / f"cut{cut}"
        directory.mkdir()
        (directory / "00000000000000000001.wal").write_bytes(original[:cut])
        assert_recovers_to(directory, payloads[:-1])


def test_zeros_after_the_last_record_are_a_torn_tail(tmp_path: Path) -> None:
    # What a power loss can leave when the file size reached disk but the data did not.
    payloads, _, _ = write_records(tmp_path, 3)
    (segment,) = segments(tmp_path)
    with segment.open("ab") as f:
        f.write(bytes(5000))
    assert_recovers_to(tmp_path, payloads)


def test_torn_tail_of_a_new_segment(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path, segment_bytes=200, fsync=False) as wal:
        for i in range(5):
            wal.append(payload(i, 60))  # two records a segment: seq 5 starts the last one
    last = segments(tmp_path)[-1]
    assert last.name == "00000000000000000005.wal"
    with last.open("r+b") as f:
        f.truncate(last.stat().st_size - 1)
    assert [s for s, _ in replayed(tmp_path)] == [1, 2, 3, 4]
    with WriteAheadLog(tmp_path, fsync=False) as wal:
        assert wal.stats().segments == 3  # the now empty segment stays, and is reused
        assert wal.append(b"x") == 5


def test_interrupted_segment_creation_is_cleaned_up(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path) as wal:
        wal.append(b"a")
    stray = tmp_path / "00000000000000000002.wal.tmp"
    stray.write_bytes(b"AUDIT")
    with WriteAheadLog(tmp_path) as wal:
        assert wal.append(b"b") == 2
    assert not stray.exists()
    assert replayed(tmp_path) == [(1, b"a"), (2, b"b")]


# -- corruption ---------------------------------------------------------------------------


def test_flipped_byte_in_a_middle_record_is_corruption(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path, fsync=False) as wal:
        wal.append(payload(1))
        start = wal.stats().bytes
        wal.append(payload(2))
        wal.append(payload(3))
    (segment,) = segments(tmp_path)
    flip(segment, start + 30)
    with pytest.raises(WalCorruptError, match=rf"{segment.name}.* at offset {start}\b"):
        WriteAheadLog(tmp_path)
    # Nothing was dropped: the damage is still there for an operator to look at.
    with pytest.raises(WalCorruptError):
        WriteAheadLog(tmp_path)


def test_damage_in_a_sealed_segment_is_corruption_even_at_its_end(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path, segment_bytes=200, fsync=False) as wal:
        for i in range(8):
            wal.append(payload(i, 60))
    first = segments(tmp_path)[0]
    with first.open("r+b") as f:
        f.truncate(first.stat().st_size - 1)
    with pytest.raises(WalCorruptError, match=first.name):
        WriteAheadLog(tmp_path)


def test_missing_middle_segment_is_corruption(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path, segment_bytes=200, fsync=False) as wal:
        for i in range(8):
            wal.append(payload(i, 60))
    files = segments(tmp_path)
    assert len(files) >= 3
    files[1].unlink()
    with pytest.raises(WalCorruptError, match="missing"):
        WriteAheadLog(tmp_path)


def test_damaged_segment_header_is_corruption(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path, fsync=False) as wal:
        wal.append(b"a")
    (segment,) = segments(tmp_path)
    flip(segment, 0)
    with pytest.raises(WalCorruptError, match="segment header"):
        WriteAheadLog(tmp_path)


def test_renamed_segment_is_corruption(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path, fsync=False) as wal:
        wal.append(b"a")
    (segment,) = segments(tmp_path)
    segment.rename(tmp_path / "00000000000000000007.wal")
    with pytest.raises(WalCorruptError, match="first seq 1"):
        WriteAheadLog(tmp_path)


def test_replay_rechecks_crcs(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path, fsync=False) as wal:
        wal.append(payload(1))
        start = wal.stats().bytes
        wal.append(payload(2))
        wal.append(payload(3))
        flip(segments(tmp_path)[0], start + 30)  # bit rot after opening
        records = wal.replay()
        assert next(records)[0] == 1
        with pytest.raises(WalCorruptError, match="CRC"):
            next(records)


# -- trim ---------------------------------------------------------------------------------


def test_trim_deletes_whole_segments_and_numbering_continues(tmp_path: Path) -> None:
    payloads = [payload(i, 60) for i in range(1, 21)]
    with WriteAheadLog(tmp_path, segment_bytes=250) as wal:
        assert wal.append_many(payloads) == list(range(1, 21))
        firsts = [int(p.stem) for p in segments(tmp_path)]
        assert len(firsts) > 4
        wal.trim(9)
        # A segment goes when its last record (one before the next segment's first) <= 9.
        kept = [f for f, nxt in zip(firsts, [*firsts[1:], 10**9], strict=True) if nxt - 1 > 9]
        assert [int(p.stem) for p in segments(tmp_path)] == kept
        assert wal.stats().oldest_seq == kept[0] <= 10
    records = replayed(tmp_path)
    assert records == [(s, payloads[s - 1]) for s in range(kept[0], 21)]

    with WriteAheadLog(tmp_path, segment_bytes=250) as wal:
        wal.trim(10**9)  # everything: the active segment stays, and with it the numbering
        assert len(segments(tmp_path)) == 1
        assert wal.stats().next_seq == 21
    with WriteAheadLog(tmp_path, segment_bytes=250) as wal:
        assert wal.append(b"next") == 21
        wal.trim(21)
    with WriteAheadLog(tmp_path, segment_bytes=250) as wal:
        assert wal.append(b"later") == 22


def test_trim_then_reopen_after_a_rotation_keeps_numbering(tmp_path: Path) -> None:
    # Each record fills a segment of its own; trim leaves only the active one, whose name
    # (and record) says where numbering resumes.
    with WriteAheadLog(tmp_path, segment_bytes=100, fsync=False) as wal:
        for i in range(4):
            wal.append(payload(i, 60))
        wal.trim(3)
        assert [int(p.stem) for p in segments(tmp_path)] == [4]
    with WriteAheadLog(tmp_path, fsync=False) as wal:
        assert list(wal.replay()) == [(4, payload(3, 60))]
        assert wal.append(b"x") == 5


def test_crash_in_the_middle_of_a_trim_leaves_a_valid_log(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path, segment_bytes=200, fsync=False) as wal:
        for i in range(10):
            wal.append(payload(i, 60))
    files = segments(tmp_path)
    files[0].unlink()  # trim deletes oldest first; the crash came before the second unlink
    seqs = [s for s, _ in replayed(tmp_path)]
    assert seqs == list(range(int(files[1].stem), 11))


def test_trim_keeps_the_active_segment_while_it_holds_a_later_record(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path, fsync=False) as wal:
        wal.append_many([b"a", b"b", b"c"])
        wal.trim(2)
        assert list(wal.replay()) == [(1, b"a"), (2, b"b"), (3, b"c")]
        assert wal.append(b"d") == 4


def test_a_trim_of_everything_leaves_nothing_to_replay_after_a_restart(tmp_path: Path) -> None:
    # A collector trims after each commit: a clean restart must not replay (and re-commit)
    # what was already in the lake.
    with WriteAheadLog(tmp_path) as wal:
        wal.append_many([b"a", b"b", b"c"])
        wal.trim(3)
        assert list(wal.replay()) == []
        assert (wal.stats().records, wal.stats().oldest_seq) == (0, None)
        assert [int(p.stem) for p in segments(tmp_path)] == [4]
        assert wal.append(b"d") == 4
    with WriteAheadLog(tmp_path) as wal:
        assert list(wal.replay()) == [(4, b"d")]
        wal.trim(4)
    with WriteAheadLog(tmp_path) as wal:
        assert list(wal.replay()) == []
        assert wal.append(b"e") == 5


def test_a_trim_on_a_full_disk_keeps_the_segment_and_the_log_usable(tmp_path: Path) -> None:
    with small_disk(tmp_path / "small", "256k") as disk, WriteAheadLog(disk / "wal") as wal:
        wal.append_many([b"a", b"b"])
        filler = fill(disk)
        wal.trim(2)  # no room for the next segment: the records stay, nothing fails
        assert [s for s, _ in wal.replay()] == [1, 2]
        filler.unlink()
        wal.trim(2)
        assert list(wal.replay()) == []
        assert wal.append(b"c") == 3


# -- usage errors and lifecycle -----------------------------------------------------------


def test_payload_too_large(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path, fsync=False) as wal:
        with pytest.raises(WalError, match="256 MiB"):
            wal.append(bytes(MAX_PAYLOAD_BYTES + 1))
        with pytest.raises(WalError, match="256 MiB"):
            wal.append_many([b"ok", bytes(MAX_PAYLOAD_BYTES + 1)])
        assert wal.append(b"ok") == 1  # a rejected payload costs nothing


def test_append_after_close(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path)
    wal.append(b"a")
    wal.close()
    wal.close()
    with pytest.raises(WalError, match="closed"):
        wal.append(b"b")
    with pytest.raises(WalError, match="closed"):
        wal.append_many([b"b"])
    with pytest.raises(WalError, match="closed"):
        wal.replay()
    with pytest.raises(WalError, match="closed"):
        wal.trim(1)


def test_second_instance_is_refused(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path), pytest.raises(WalError, match="in use"):
        WriteAheadLog(tmp_path)
    with WriteAheadLog(tmp_path):  # the lock went with the close
        pass


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(WalError, match="segment_bytes"):
        WriteAheadLog(tmp_path, segment_bytes=10)
    with pytest.raises(WalError, match="group_window_s"):
        WriteAheadLog(tmp_path, group_window_s=-1)
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(WalError, match="cannot open"):
        WriteAheadLog(tmp_path / "file")


def test_replay_sees_a_consistent_prefix_while_appending(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path, segment_bytes=4096) as wal:
        stop = threading.Event()

        def work() -> None:
            while not stop.is_set():
                wal.append(b"y" * 100)

        writers = [threading.Thread(target=work) for _ in range(4)]
        for w in writers:
            w.start()
        try:
            for _ in range(20):
                seqs = [s for s, _ in wal.replay()]
                assert seqs == list(range(1, len(seqs) + 1))
        finally:
            stop.set()
            for w in writers:
                w.join()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batches=st.lists(st.lists(st.binary(max_size=300), max_size=6), max_size=12),
    segment_bytes=st.integers(min_value=64, max_value=2000),
    trim_at=st.integers(min_value=-1, max_value=40),
)
def test_any_appends_round_trip(
    batches: list[list[bytes]], segment_bytes: int, trim_at: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        expected: list[tuple[int, bytes]] = []
        with WriteAheadLog(directory, segment_bytes=segment_bytes, fsync=False) as wal:
            for batch in batches:
                seqs = [wal.append(batch[0])] if len(batch) == 1 else wal.append_many(batch)
                expected += zip(seqs, batch, strict=True)
            assert list(wal.replay()) == expected
            assert [s for s, _ in expected] == list(range(1, len(expected) + 1))
            wal.trim(trim_at)
        after_trim = replayed(directory)
        # Trim drops a prefix (whole segments), and nothing after `trim_at`.
        assert after_trim == expected[len(expected) - len(after_trim) :]
        assert len(after_trim) >= len([s for s, _ in expected if s > trim_at])


# -- crash safety -------------------------------------------------------------------------

# Appends from several threads (one with append_many) and trims, printing each seq only
# after append returned; "T n" is printed *before* trim(n) starts, so the test knows the
# most a trim in progress may have deleted.
CHILD = r"""
import os, sys, threading, time
from pathlib import Path
from ingest.wal import WriteAheadLog

wal = WriteAheadLog(Path(sys.argv[1]), segment_bytes=4096)

def emit(line):
    os.write(1, line.encode())  # one write below PIPE_BUF: lines never interleave

def writer(t):
    i = 0
    while True:
        if t == 0:
            batch = [f"{t}:{i + k}:".encode() * 5 for k in range(3)]
            seqs = wal.append_many(batch)
            i += 3
        else:
            seqs = [wal.append(f"{t}:{i}:".encode() * (1 + i % 9))]
            i += 1
        emit("".join(f"A {s}\n" for s in seqs))

def trimmer():
    while True:
        time.sleep(0.05)
        upto = wal.stats().next_seq - 1500
        emit(f"T {upto}\n")
        wal.trim(upto)

emit("ready\n")
for t in range(4):
    threading.Thread(target=writer, args=(t,), daemon=True).start()
threading.Thread(target=trimmer, daemon=True).start()
threading.Event().wait()
"""


def read_into(stream: IO[bytes], chunks: list[bytes]) -> None:
    chunks.append(stream.read())  # keeps the pipe drained so the child never blocks on it


@pytest.mark.slow
def test_kill_9_loses_nothing_acknowledged(tmp_path: Path) -> None:
    directory = tmp_path / "wal"
    rng = random.Random(9)
    acknowledged: set[int] = set()
    trim_intent = -1
    started = time.monotonic()
    for _ in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(directory)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None
        if proc.stdout.readline() != b"ready\n":  # the log did not open
            proc.kill()
            pytest.fail(proc.communicate(timeout=10)[1].decode())
        chunks: list[bytes] = []
        reader = threading.Thread(target=read_into, args=(proc.stdout, chunks))
        reader.start()
        time.sleep(rng.uniform(0.1, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        reader.join(timeout=10)
        lines = b"".join(chunks).split(b"\n")[:-1]  # a line cut by the kill has no newline
        acked = [int(line[2:]) for line in lines if line.startswith(b"A ")]
        trims = [int(line[2:]) for line in lines if line.startswith(b"T ")]
        assert acked, "the child appended nothing before it was killed"
        assert len(acked) == len(set(acked))
        acknowledged |= set(acked)
        trim_intent = max([trim_intent, *trims])

        records = replayed(directory)
        seqs = [seq for seq, _ in records]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # strictly increasing, no gaps
        lost = {s for s in acknowledged if s > trim_intent} - set(seqs)
        assert not lost, f"acknowledged but not replayed: {sorted(lost)[:10]}"
        for _, data in records:
            t, i = data.split(b":")[:2]
            assert data in {f"{t.decode()}:{i.decode()}:".encode() * k for k in range(1, 10)}
    assert time.monotonic() - started < 20
