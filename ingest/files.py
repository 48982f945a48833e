"""Batch ingest from files or stdin: JSON Lines, JSON arrays, CSV and Parquet.

Every format is turned into wire events (dicts) and validated by `lake.contract`, so the
rules and the error messages are the same whatever the input. Tabular formats (CSV,
Parquet) may use nested columns (`actor.id`) or the stored flat names (`actor_id`);
`details` is then a JSON object in text form.

Events that arrive without an id get one derived from their content alone
(`lake.contract`), so ingesting the same file twice, or the same event by another route
(the collector, another format, another position), yields the same id and the lake keeps
one copy. Two identical id-less events in one input are one event: the second is dropped
and counted with the duplicates. A JSON object that repeats a key, and a tabular input
whose columns name one field twice (`actor_id` beside `actor.id`), are rejected: taking
the last would let two readers of one input disagree.

Memory stays bounded by the chunk and batch sizes, not by the input, in two passes:

1. `open_input` reads JSON Lines a chunk at a time (CHUNK_BYTES), hashes it, validates
   each chunk (in worker processes for large inputs) and spools the valid rows to an
   anonymous temporary Arrow IPC file (0600, gone when closed, even after a crash). It
   keeps only the rejects and, per event, a 64-bit fingerprint of (tenant, id), ids
   assigned where missing: 8 bytes per event is all that grows with the input.
   Fingerprints that repeat are checked exactly against the spool, which names each
   duplicate.
2. `Spooled.batches` reads the spool back in batches and drops the duplicates.

So every problem of an input is known before anything is written. JSON arrays, CSV and
Parquet are still read whole (a parser per format would be needed to stream them), then
spooled like the rest.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import hashlib
import io
import os
import secrets
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ingest.closing import Closing
from ingest.fingerprints import fingerprints
from ingest.formats import csv_records, detect_format, parquet_records
from lake.contract import (
    OUTPUT_SCHEMA,
    Issue,
    Rejected,
    Scanned,
    StorageError,
    TimeWindow,
    UsageError,
    Validated,
    ValidationError,
    assign_missing_ids,
    parse_json_array_issues,
    scan_jsonl,
    time_window,
    validate,
)
from lake.storage import process_context

Progress = Callable[[str, int, int], None]

# JSON Lines are read, validated and spooled in chunks of about this many bytes (cut at a
# line end). AUDITLAKE_INGEST_CHUNK_BYTES overrides it, for tests of many-chunk inputs.
CHUNK_BYTES = int(os.environ.get("AUDITLAKE_INGEST_CHUNK_BYTES", 8 * 1024 * 1024))
# Below this size one process is faster than starting workers (interpreter + imports).
PARALLEL_MIN_BYTES = 96 * 1024 * 1024
# Chunks handed to the workers ahead of the one being spooled, per worker: enough to keep
# them busy, few enough to bound memory (each is CHUNK_BYTES of input and its rows).
AHEAD_PER_WORKER = 2
# Columns the spool keeps beside the events: input position (duplicates), line, and
# whether the id was assigned (a repeat of an assigned id is the same event sent twice).
_POSITION, _LINE, _ASSIGNED = "_position", "_line", "_assigned"
_ROWS_SCHEMA = pa.schema([f.with_nullable(True) for f in OUTPUT_SCHEMA])
SPOOL_SCHEMA = (
    _ROWS_SCHEMA.append(pa.field(_POSITION, pa.int64()))
    .append(pa.field(_LINE, pa.int64()))
    .append(pa.field(_ASSIGNED, pa.bool_()))
)


@dataclass
class Input:
    """One input, read and validated, held in memory (see `load`)."""

    name: str
    format: str
    digest: str
    validated: Validated
    total: int

    @property
    def rejected(self) -> list[Rejected]:
        return self.validated.rejected


class Spooled(Closing):
    """One input, validated and spooled to disk: `batches` yields its valid events.

    A context manager: closing it removes the spool.
    """

    def __init__(self, name: str, fmt: str, spool: IO[bytes]) -> None:
        self.name = name
        self.format = fmt
        self.digest = ""
        self.total = 0  # events in the input, valid or not
        self.rows = 0  # valid events, duplicates included until `_drop` is known
        self.repeats = 0  # id-less events identical to an earlier one: dropped, not rejected
        self.rejected: list[Rejected] = []
        self.spool_batches = 0  # record batches written to the spool
        self._spool = spool
        self._drop = np.zeros(0, dtype=np.int64)  # input positions of duplicates

    @property
    def issues(self) -> list[Issue]:
        return [issue for r in self.rejected for issue in r.issues]

    def close(self) -> None:
        # Closing flushes the file's buffer, which fails again on a full disk; the file is
        # anonymous (unlinked at creation), so whatever it held is gone either way.
        with contextlib.suppress(OSError):
            self._spool.close()

    def batches(self, size: int) -> Iterator[pa.Table]:
        """The valid events in input order, `size` at a time (the last may be smaller).

        Duplicates are dropped. Only one batch (and one spooled chunk) is in memory at a
        time.
        """
        pending: list[pa.RecordBatch] = []
        count = 0
        for batch in self._spooled():
            if self._drop.size:
                keep = ~np.isin(batch.column(_POSITION).to_numpy(), self._drop)
                batch = batch.filter(pa.array(keep))
            while batch.num_rows:
                take = min(size - count, batch.num_rows)
                pending.append(batch.slice(0, take))
                batch = batch.slice(take)
                count += take
                if count == size:
                    table, pending, count = _finish(pending), [], 0
                    yield table
        if pending:
            yield _finish(pending)

    def read_all(self) -> pa.Table:
        """Every valid event as one table (for callers that want it in memory)."""
        parts = list(self.batches(max(self.rows, 1)))
        return parts[0] if parts else _ROWS_SCHEMA.empty_table()

    def _spooled(self) -> Iterator[pa.RecordBatch]:
        self._spool.seek(0)
        if self.spool_batches == 0:
            return
        # Read through the file object, not a memory map: pages of a mapped spool would
        # count in the process's memory until the whole map was released.
        reader = pa.ipc.open_file(self._spool)
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i)


def _finish(batches: list[pa.RecordBatch]) -> pa.Table:
    """Spooled batches → one table of events (its chunks are the batches: no copy)."""
    return pa.Table.from_batches(batches).select(_ROWS_SCHEMA.names)


def spool_dir_for(lake: str) -> Path | None:
    """Where to spool for a lake: beside it when it is on local disk, else $TMPDIR.

    Beside the lake rather than in /tmp, which is often a RAM disk: the spool is about
    as large as the valid part of the input, in Arrow form.
    """
    if "://" in lake:
        return None
    return Path(lake).resolve().parent


def _temporary(spool_dir: Path | None) -> IO[bytes]:
    """An anonymous file (0600, unlinked already): nothing is left behind, even on a kill."""
    if spool_dir is not None:
        try:
            return tempfile.TemporaryFile(prefix=".auditlake-spool-", dir=spool_dir)
        except OSError:
            pass  # not writable there: fall back to the system's temporary directory
    return tempfile.TemporaryFile(prefix="auditlake-spool-")


def open_input(
    name: str,
    fmt: str | None = None,
    *,
    data: bytes | None = None,
    workers: int = 1,
    progress: Progress | None = None,
    spool_dir: Path | None = None,
    max_future_skew: timedelta | None = None,
) -> Spooled:
    """Read, validate and spool one input (a path, or '-' for stdin).

    With `workers` > 1, JSON Lines inputs of PARALLEL_MIN_BYTES and more are validated in
    that many processes (see `lake.storage`: a calling script needs the usual
    `if __name__ == "__main__":` guard); the CLI passes one worker per core.
    `data` stands in for the input's bytes (tests, callers holding it already).
    `max_future_skew` bounds event times (see `lake.contract.validate`); the clock is read
    once, so every chunk of the input is judged alike.

    Raises UsageError for an input that cannot be read (stdin closed, no such file) and
    StorageError when the spool cannot be written (a full disk): one-line reasons.
    """
    label = "stdin" if name == "-" else name
    window = time_window(max_future_skew)
    stream, size = _open_stream(name, data)
    spooled: Spooled | None = None
    try:
        head = _read(stream, 64, label)
        kind = detect_format(name, fmt, head)
        spooled = Spooled(label, kind, _temporary(spool_dir))
        try:
            if kind == "jsonl":
                _spool_jsonl(
                    spooled, stream, head, size, name, data, workers, progress, spool_dir, window
                )
            else:
                _spool_whole(spooled, head + _read(stream, -1, label), label, window)
        except ValidationError as exc:
            exc.source = label
            raise
        except OSError as exc:
            # The input was readable (see `_read`): what failed is the spool.
            raise StorageError(_spool_failure(exc, spool_dir)) from None
    except BaseException:
        if spooled is not None:
            spooled.close()
        raise
    finally:
        if data is not None or name != "-":
            stream.close()
    return spooled


def _read(stream: IO[bytes], size: int, label: str) -> bytes:
    """`stream.read(size)`, with a read error as a one-line UsageError naming the input."""
    try:
        return stream.read(size)
    except OSError as exc:
        raise UsageError(f"{label}: cannot be read ({exc.strerror or exc})") from None


def _spool_failure(exc: OSError, spool_dir: Path | None) -> str:
    where = str(spool_dir) if spool_dir is not None else tempfile.gettempdir()
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"no space left for the ingest spool in {where} (it needs about the size of "
            "the input); free space there, or point TMPDIR elsewhere. Nothing was written "
            "to the lake"
        )
    return f"cannot write the ingest spool in {where} ({exc.strerror or exc}); nothing was written"


def load(
    name: str,
    fmt: str | None = None,
    data: bytes | None = None,
    workers: int = 1,
    progress: Progress | None = None,
) -> Input:
    """Read and validate one input into memory: `open_input`, then its events as a table.

    For inputs that fit in memory (tests, benchmarks); the CLI streams with `open_input`.
    """
    with open_input(name, fmt, data=data, workers=workers, progress=progress) as spooled:
        table = spooled.read_all()
        validated = Validated(table=table, rejected=spooled.rejected)
        return Input(spooled.name, spooled.format, spooled.digest, validated, spooled.total)


def _open_stream(name: str, data: bytes | None) -> tuple[IO[bytes], int | None]:
    """The input as a binary stream, and its size when known."""
    if data is not None:
        return io.BytesIO(data), len(data)
    if name == "-":
        # With descriptor 0 closed (`ingest - <&-`) Python starts with no sys.stdin.
        stdin = sys.stdin.buffer if sys.stdin is not None else None
        if stdin is None or getattr(stdin, "closed", False):
            raise UsageError("stdin: standard input is closed; pass a file name or pipe events in")
        return stdin, None
    path = Path(name)
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        raise UsageError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{name}: is a directory") from None
    except PermissionError:
        raise UsageError(f"{name}: permission denied") from None
    return fh, os.fstat(fh.fileno()).st_size


def _spool_whole(spooled: Spooled, raw: bytes, label: str, window: TimeWindow) -> None:
    """JSON arrays, CSV and Parquet: read whole, validated as before, then spooled."""
    spooled.digest = hashlib.sha256(raw).hexdigest()
    if spooled.format == "json":
        records, issues = parse_json_array_issues(raw)
        validated = validate(records, pre_issues=issues, window=window)
    elif spooled.format == "csv":
        records, lines, issues = csv_records(raw)
        validated = validate(records, lines=lines, pre_issues=issues, window=window)
    else:
        records, issues = parquet_records(raw, label)
        validated = validate(records, pre_issues=issues, window=window)
    del raw
    table = validated.table
    positions = validated.positions if validated.positions is not None else np.zeros(0)
    # Ids are assigned already; which were is only needed for repeats across chunks.
    table = (
        table.append_column(_POSITION, pa.array(positions, pa.int64()))
        .append_column(_LINE, pa.nulls(table.num_rows, pa.int64()))
        .append_column(_ASSIGNED, pa.nulls(table.num_rows, pa.bool_()))
    )
    with pa.ipc.new_file(spooled._spool, SPOOL_SCHEMA) as writer:
        if table.num_rows:
            writer.write_table(table.cast(SPOOL_SCHEMA))
            spooled.spool_batches = 1
    spooled.total = len(records)
    spooled.rows = table.num_rows
    spooled.rejected = validated.rejected
    spooled.repeats = validated.repeats


@dataclass
class _Chunk:
    """What a worker sends back for one chunk of JSON Lines."""

    scanned: Scanned  # its table has every id, assigned where missing
    assigned: np.ndarray  # per row: whether its id was assigned
    fingerprints: np.ndarray


def _scan_chunk(data: bytes, first_line: int, seed: int, window: TimeWindow) -> _Chunk:
    """Validate one chunk of JSON Lines and give id-less events their ids (maybe in a
    worker process: ids depend on the event alone, so any chunk can assign them)."""
    scanned = scan_jsonl(data, first_line, window=window)
    assigned = pc.is_null(scanned.table.column("event_id")).to_numpy(zero_copy_only=False)
    scanned.table = table = assign_missing_ids(scanned.table)
    prints = fingerprints(table.column("tenant"), table.column("event_id"), seed)
    return _Chunk(scanned, assigned, prints)


def _chunks(stream: IO[bytes], head: bytes, label: str = "input") -> Iterator[bytes]:
    """The stream in pieces of about CHUNK_BYTES, each ending at a line end (but the last)."""
    rest = head
    while True:
        block = _read(stream, CHUNK_BYTES, label)
        if not block:
            if rest:
                yield rest
            return
        data = rest + block if rest else block
        cut = data.rfind(b"\n")
        if cut < 0:
            rest = data  # one line longer than a chunk: keep reading
            continue
        yield data[: cut + 1]
        rest = data[cut + 1 :]


def _spool_jsonl(
    spooled: Spooled,
    stream: IO[bytes],
    head: bytes,
    size: int | None,
    name: str,
    data: bytes | None,
    workers: int,
    progress: Progress | None,
    spool_dir: Path | None,
    window: TimeWindow,
) -> None:
    """Pass 1 over JSON Lines: hash, validate and spool chunk by chunk, in input order.

    Chunks are validated independently (each knows its first line; event indexes are
    shifted here, as results come back in order), so the outcome is the same however
    the input is cut and whichever process validates each piece.
    """
    report = progress or (lambda stage, done, total: None)
    seed = secrets.randbits(64)
    digest = hashlib.sha256()
    prints: list[np.ndarray] = []
    ahead: deque[tuple[Future[_Chunk], int]] = deque()  # (work, input bytes up to its end)
    read, line = 0, 1
    with contextlib.ExitStack() as cleanup:
        # stdin cannot be read twice: keep a copy, in case a duplicate must be quoted.
        copy = None
        if name == "-" and data is None:
            copy = cleanup.enter_context(_temporary(spool_dir))
        pool: ProcessPoolExecutor | None = None
        writer = cleanup.enter_context(pa.ipc.new_file(spooled._spool, SPOOL_SCHEMA))

        def spool(chunk: _Chunk, done: int) -> None:
            scanned, offset = chunk.scanned, spooled.total
            table = (
                scanned.table.append_column(
                    _POSITION, pa.array(scanned.positions + offset, pa.int64())
                )
                .append_column(_LINE, pa.array(scanned.lines, pa.int64()))
                .append_column(_ASSIGNED, pa.array(chunk.assigned, pa.bool_()))
            )
            for batch in table.to_batches():
                writer.write_batch(batch)
                spooled.spool_batches += 1
            spooled.rows += table.num_rows
            spooled.rejected += [_shifted(r, offset) for r in scanned.rejected]
            spooled.total += scanned.events
            prints.append(chunk.fingerprints)
            report("validate", done, size or read)

        for piece in _chunks(stream, head, spooled.name):
            digest.update(piece)
            if copy is not None:
                copy.write(piece)
            first_line, line = line, line + piece.count(b"\n")
            read += len(piece)
            if pool is None and workers > 1 and max(read, size or 0) >= PARALLEL_MIN_BYTES:
                pool = ProcessPoolExecutor(workers, mp_context=process_context("ingest.files"))
                cleanup.callback(pool.shutdown, cancel_futures=True)
            if pool is None:
                spool(_scan_chunk(piece, first_line, seed, window), read)
                continue
            ahead.append((pool.submit(_scan_chunk, piece, first_line, seed, window), read))
            del piece
            while len(ahead) > AHEAD_PER_WORKER * workers:
                work, done = ahead.popleft()
                spool(work.result(), done)
        while ahead:
            work, done = ahead.popleft()
            spool(work.result(), done)
        writer.close()
        spooled.digest = digest.hexdigest()
        _reject_duplicates(spooled, prints, seed, copy, name, data)


def _shifted(r: Rejected, offset: int) -> Rejected:
    if not offset:
        return r
    issues = [Issue(i.index + offset, i.field, i.message, i.line) for i in r.issues]
    return Rejected(r.index + offset, r.raw, issues, r.line)


def _reject_duplicates(
    spooled: Spooled,
    prints: list[np.ndarray],
    seed: int,
    copy: IO[bytes] | None,
    name: str,
    data: bytes | None,
) -> None:
    """Two events of one tenant in one input may not share an id (as `lake.contract.validate`).

    Only ids whose fingerprint repeats are looked at again, exactly, in the spool; each
    repeat after the first is rejected, quoted as it was sent, except where both ids were
    assigned: that is the same id-less event sent twice, dropped and counted in `repeats`.
    """
    every = np.concatenate(prints) if prints else np.zeros(0, dtype=np.uint64)
    del prints[:]
    every.sort()
    repeated = np.unique(every[1:][every[1:] == every[:-1]])
    del every
    if not repeated.size:
        return
    first: dict[tuple[str, str], tuple[int, bool]] = {}
    found: list[tuple[int, int, str]] = []  # (position, line, message)
    same: list[int] = []  # positions of repeated id-less events
    columns = ("tenant", "event_id", _POSITION, _LINE, _ASSIGNED)
    for batch in spooled._spooled():
        suspects = np.isin(
            fingerprints(batch.column("tenant"), batch.column("event_id"), seed), repeated
        )
        if not suspects.any():
            continue
        rows = batch.filter(pa.array(suspects))
        for tenant, event_id, position, line, assigned in zip(
            *(rows.column(c).to_pylist() for c in columns), strict=True
        ):
            seen, seen_assigned = first.setdefault((tenant, event_id), (position, assigned))
            if seen == position:
                continue
            if assigned and seen_assigned:
                same.append(position)
            else:
                message = f"duplicate id {event_id!r}: event {seen} of this input already uses it"
                found.append((position, line, message))
    sent = _lines_as_sent({line for _, line, _ in found}, copy, name, data) if found else {}
    extra = [
        Rejected(position, orjson.loads(sent[line]), [Issue(position, "id", message, line)], line)
        for position, line, message in found
    ]
    spooled._drop = np.array(sorted([p for p, _, _ in found] + same), dtype=np.int64)
    spooled.rows -= len(extra) + len(same)
    spooled.repeats += len(same)
    spooled.rejected = sorted(spooled.rejected + extra, key=lambda r: r.index)


def _lines_as_sent(
    wanted: set[int], copy: IO[bytes] | None, name: str, data: bytes | None
) -> dict[int, bytes]:
    """The given lines of the input, read again (stdin from its copy)."""
    todo = sorted(wanted)
    out: dict[int, bytes] = {}
    line = 1
    with contextlib.ExitStack() as stack:
        if copy is not None:
            copy.seek(0)
            stream: IO[bytes] = copy
        elif data is not None:
            stream = io.BytesIO(data)
        else:
            stream = stack.enter_context(Path(name).open("rb"))
        for piece in _chunks(stream, b""):
            ends = piece.count(b"\n")
            # Pieces end at a line end, but the last may end without one.
            whole = ends if piece.endswith(b"\n") else ends + 1
            lo, hi = bisect.bisect_left(todo, line), bisect.bisect_left(todo, line + whole)
            if hi > lo:
                texts = piece.split(b"\n")
                for n in todo[lo:hi]:
                    out[n] = texts[n - line]
            line += ends
            if len(out) == len(todo):
                break
    return out


def write_rejects(path: Path, inp: Input | Spooled, *, append: bool = False) -> int:
    """Write rejected events, each with its reasons, as JSON Lines beside the input.

    With `append`, several inputs share one rejects file (each line names its input).
    """
    with path.open("ab" if append else "wb") as fh:
        for r in inp.rejected:
            fh.write(
                orjson.dumps(
                    {
                        "input": inp.name,
                        "index": r.index,
                        "line": r.line,
                        "errors": [i.as_dict() for i in r.issues],
                        "event": r.raw,
                    },
                    default=str,
                )
                + b"\n"
            )
    return len(inp.rejected)
