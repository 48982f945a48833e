"""How the CLI talks: exit codes, one-line errors, progress bars, tables and JSON.

Data goes to stdout, diagnostics and progress to stderr; progress bars and colour only
when stderr is a terminal, so pipes and cron logs stay clean.

Values in a table are data someone else wrote (an event's actor, a SQL alias): they are
shown, never obeyed. Control characters (C0, DEL, C1: ESC and OSC sequences, newlines),
bidirectional overrides and line separators become visible escapes (`\x1b`, `\n`,
`\u202e`), and Rich markup in them is printed as typed (`[red]`), so a value can neither
drive the terminal, nor split a row, nor reorder what the reader sees.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import IntEnum
from typing import Any, Final, NoReturn

import click
import orjson
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

stderr = Console(stderr=True, highlight=False)
# Piped output keeps whole values (keys, ids) rather than Rich's 80-column default.
stdout = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 250)


class ExitCode(IntEnum):
    """The CLI's exit codes (the contract: 0 ok, 1 a problem found, 2 usage or input)."""

    OK = 0
    FINDING = 1  # the check found a problem: tampering, failed proof, failing rule test
    USAGE = 2  # usage or input error


def fail(message: str, code: ExitCode = ExitCode.USAGE) -> NoReturn:
    """Print a one-line reason to stderr and exit."""
    click.echo(f"auditlake: {message}", err=True)
    raise SystemExit(int(code))


def note(message: str) -> None:
    """A diagnostic line on stderr."""
    click.echo(message, err=True)


def emit_json(value: Any) -> None:
    """Stable, machine-readable JSON on stdout (sorted keys, one document)."""
    sys.stdout.write(
        orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=str).decode()
        + "\n"
    )


# C0 controls, DEL, C1 controls, Arabic letter mark, LRM/RLM, line and paragraph
# separators, the bidi embeddings/overrides (U+202A-U+202E) and isolates (U+2066-U+2069).
_UNSAFE: Final = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_NAMED: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(value: object) -> str:
    """A value as text a terminal shows and cannot obey (see the module docstring)."""
    return _UNSAFE.sub(_escape, "" if value is None else str(value))


def emit_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A human table on stdout; every title, header and cell through `terminal_safe`."""
    table = Table(
        title=Text(terminal_safe(title)) if title is not None else None,
        show_lines=False,
        title_justify="left",
    )
    for col in columns:
        table.add_column(Text(terminal_safe(col)))
    for row in rows:
        table.add_row(*(Text(terminal_safe(v)) for v in row))
    stdout.print(table)


@contextmanager
def progress(label: str) -> Iterator[Callable[[str, int, int], None]]:
    """A progress callback `(stage, done, total)`; a bar on a terminal, else silent."""
    if not sys.stderr.isatty():
        yield lambda stage, done, total: None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(f"{label}: {stage}", total=max(total, 1))
            bar.update(tasks[stage], completed=done, total=max(total, 1))

        yield update
