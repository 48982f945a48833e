"""Ingest files into a lake as signed batches, and the summary of what that did.

Every input is read, validated whole and spooled (`ingest.files.open_input`) before
anything is written; then each input's valid events are appended `batch_size` at a time,
each batch committed and sealed whole. `IngestSummary` is what the CLI prints (one row per
tenant) and its `--output-format json` document (`as_dict`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from deltalake.exceptions import DeltaError

from ingest.files import Progress, Spooled, open_input, spool_dir_for, write_rejects
from lake.contract import Issue, StorageError, UsageError, ValidationError
from lake.log import NoteSigner
from lake.storage import Lake
from lake.write import AppendResult, append

# A progress bar per stage: `with progress("read x.jsonl") as update: update(stage, n, total)`.
ProgressFactory = Callable[[str], AbstractContextManager[Progress]]


@contextlib.contextmanager
def _silent(label: str) -> Iterator[Progress]:
    yield lambda stage, done, total: None


def _say_nothing(line: str) -> None:
    return None


@dataclass(frozen=True)
class TenantCount:
    """One tenant in one batch: events appended, and its log's size after the batch."""

    appended: int
    tree_size: int


@dataclass(frozen=True)
class BatchSummary:
    batch_id: str
    appended: int
    duplicates: int
    tenants: dict[str, TenantCount]

    @classmethod
    def of(cls, result: AppendResult) -> BatchSummary:
        return cls(
            result.batch_id,
            result.appended,
            result.duplicates,
            {t.tenant: TenantCount(t.appended, t.tree_size) for t in result.tenants},
        )


@dataclass
class InputSummary:
    input: str
    format: str
    events: int
    rejected: int
    batches: list[BatchSummary] = field(default_factory=list)
    rejects_file: str | None = None


@dataclass
class IngestSummary:
    """What an ingest did: per input its batches, and the totals."""

    inputs: list[InputSummary] = field(default_factory=list)
    appended: int = 0
    duplicates: int = 0
    rejected: int = 0
    witnesses: list[dict[str, Any]] = field(default_factory=list)

    @property
    def batches(self) -> list[BatchSummary]:
        return [b for entry in self.inputs for b in entry.batches]

    def touched(self) -> list[str]:
        """The tenants any batch appended to, sorted."""
        return sorted({t for b in self.batches for t in b.tenants})

    def per_tenant(self) -> list[tuple[str, int, int]]:
        """(tenant, events appended, log size after the last batch), sorted by tenant."""
        rows: dict[str, tuple[int, int]] = {}
        for b in self.batches:
            for tenant, count in b.tenants.items():
                appended, _ = rows.get(tenant, (0, 0))
                rows[tenant] = (appended + count.appended, count.tree_size)
        return [(t, a, s) for t, (a, s) in sorted(rows.items())]

    def as_dict(self) -> dict[str, Any]:
        """The JSON document of `ingest --output-format json` (an input without rejects
        has no `rejects_file`)."""
        out = asdict(self)
        for entry in out["inputs"]:
            if entry["rejects_file"] is None:
                del entry["rejects_file"]
        return out


class PartlyIngested(UsageError):
    """A later batch failed on ids other events already use: the earlier batches stand.

    `issues` (positions within the input) and `source` name the problems; the message says
    how much was committed, since "nothing was written" would be false.
    """

    def __init__(self, message: str, issues: list[Issue], source: str) -> None:
        super().__init__(message)
        self.issues = issues
        self.source = source


def check_writable(lake_path: str) -> None:
    """Refuse a local lake this process cannot write (a read-only mount, permissions),
    before anything is read. Root ignores permission bits but not a read-only mount;
    access(2) sees both."""
    if "://" in lake_path:
        return
    for part in (Path(lake_path), Path(lake_path) / "events"):
        if part.exists() and not os.access(part, os.W_OK):
            raise StorageError(
                f"{lake_path}: the lake is not writable (read-only); nothing was written"
            )


def load_inputs(
    files: Sequence[str],
    stack: contextlib.ExitStack,
    *,
    lake_path: str,
    input_format: str | None = None,
    skip_invalid: bool = False,
    max_future_skew: timedelta | None = None,
    progress: ProgressFactory = _silent,
) -> list[Spooled]:
    """Read, validate and spool every input (closed with `stack`) before anything is
    written; an invalid event raises ValidationError unless `skip_invalid`."""
    loaded = []
    for name in files:
        with progress(f"read {name}") as update:
            inp = stack.enter_context(
                open_input(
                    name,
                    input_format,
                    workers=os.cpu_count() or 1,
                    progress=update,
                    spool_dir=spool_dir_for(lake_path),
                    max_future_skew=max_future_skew,
                )
            )
        if inp.rejected and not skip_invalid:
            raise ValidationError(inp.issues, source=inp.name)
        loaded.append(inp)
    return loaded


def rejects_path(inp: Spooled, rejects: str | None) -> Path:
    """Where an input's invalid events go: `rejects`, else `<input>.rejects.jsonl`."""
    if rejects:
        return Path(rejects)
    return Path("stdin.rejects.jsonl" if inp.name == "stdin" else f"{inp.name}.rejects.jsonl")


def ingest_inputs(
    lake: Lake,
    signer: NoteSigner,
    loaded: Sequence[Spooled],
    *,
    batch_size: int,
    rejects: str | None = None,
    lake_path: str = "",
    progress: ProgressFactory = _silent,
    notify: Callable[[str], None] = _say_nothing,
) -> IngestSummary:
    """Append the loaded inputs' valid events, `batch_size` per signed batch.

    Invalid events (with `skip_invalid` at load) go to a rejects file (`notify` says
    where). Each batch commits whole: a failure after the first raises with what was
    committed named (PartlyIngested, StorageError); the lake is flushed to disk last.
    """
    summary = IngestSummary()
    written: set[Path] = set()
    for inp in loaded:
        entry = InputSummary(inp.name, inp.format, inp.total, len(inp.rejected))
        if inp.rejected:
            target = rejects_path(inp, rejects)
            write_rejects(target, inp, append=target in written)
            written.add(target)
            entry.rejects_file = str(target)
            notify(f"{inp.name}: {len(inp.rejected)} invalid event(s) written to {target}")
        summary.duplicates += inp.repeats  # identical id-less events: one kept
        with progress(f"ingest {inp.name}") as update:
            _append_input(lake, signer, inp, entry, summary, batch_size, lake_path, update)
        summary.rejected += entry.rejected
        summary.inputs.append(entry)
    os.sync()  # delta-rs does not fsync: flush the lake to disk before reporting success
    return summary


def _append_input(
    lake: Lake,
    signer: NoteSigner,
    inp: Spooled,
    entry: InputSummary,
    summary: IngestSummary,
    batch_size: int,
    lake_path: str,
    update: Progress,
) -> None:
    done = 0
    for chunk in inp.batches(batch_size):
        try:
            result = append(lake, chunk, signer, progress=update)
        except ValidationError as exc:  # an id that another event already uses
            moved = [Issue(i.index + done, i.field, i.message) for i in exc.issues]
            earlier = len(entry.batches) + len(summary.batches)
            if not earlier:
                raise ValidationError(moved, source=inp.name) from None
            # Batches commit whole: the earlier ones stand, and saying "nothing was
            # written" would send the operator looking for nothing.
            raise PartlyIngested(
                f"{inp.name}: {len(moved)} problem(s) in its batch {len(entry.batches) + 1}; "
                f"{earlier} earlier batch(es) ({summary.appended} event(s)) were committed, "
                "nothing after them",
                moved,
                inp.name,
            ) from None
        except (OSError, DeltaError) as exc:
            text = str(exc).strip()
            reason = text.splitlines()[-1] if text else type(exc).__name__
            raise StorageError(
                f"{lake_path}: cannot write to the lake ({reason}); {len(entry.batches)} "
                f"batch(es) of {inp.name} were committed before this"
            ) from None
        done += chunk.num_rows
        entry.batches.append(BatchSummary.of(result))
        summary.appended += result.appended
        summary.duplicates += result.duplicates
