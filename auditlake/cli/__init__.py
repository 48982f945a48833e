"""The `auditlake` command: thin wiring of `lake` and `ingest`, nothing else.

Exit codes: 0 success, 1 the check found a problem, 2 usage or input error (a one-line
reason on stderr). `--format json` output is stable; tables are for people.

Layout: `group` holds the root group and its global options, `context` the `Ctx` every
command receives and the error handling, `options` the shared options, `output` how the
CLI prints; one module per concern under `commands/`. Every command is registered here,
in one place, by `cli.add_command` (importing a command module registers nothing).
"""

from __future__ import annotations

import contextlib
import os
import sys

import click

from auditlake.cli.commands import (
    access,
    alerts,
    consume,
    dashboard,
    demo,
    detect,
    evidence,
    ingest,
    keys,
    optimize,
    prove,
    query,
    retention,
    serve,
    tui,
    verify,
    witness,
)
from auditlake.cli.group import cli

COMMANDS: tuple[click.Command, ...] = (
    keys.init,
    keys.keys,
    ingest.ingest,
    ingest.seal_cmd,
    verify.verify,
    prove.prove_cmd,
    prove.verify_proof,
    prove.checkpoint,
    serve.serve,
    serve.token,
    demo.demo,
    access.access,
    consume.consume,
    dashboard.dashboard,
    detect.detect,
    alerts.alerts,
    query.search,
    query.sql_cmd,
    optimize.optimize,
    evidence.evidence,
    retention.retention,
    retention.hold,
    tui.tui,
    witness.witness,
)
for _command in COMMANDS:
    cli.add_command(_command)


def main() -> None:
    """Entry point. Exits through os._exit after flushing, so no library thread left
    running at interpreter shutdown can turn a finished command into an abort."""
    code = 0
    try:
        cli.main(standalone_mode=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        if isinstance(exc.code, str):
            click.echo(exc.code, err=True)
    except BrokenPipeError:
        pass  # the reader went away (`| head`): not an error of ours
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BrokenPipeError, ValueError):
            stream.flush()
    os._exit(code)


__all__ = ["cli", "main"]
