"""`auditlake detect …`: CLI wiring of `detect` (run, list, test, schedule, watch).

Registered on the `cli` group by `auditlake.cli`.
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import orjson

from auditlake.cli.context import Ctx, handle_errors, pass_ctx
from auditlake.cli.options import engine_address, engine_options, format_option
from auditlake.cli.output import ExitCode, emit_json, emit_table, fail, note, progress
from lake.verify import Engine


def _rules(ctx: Ctx, paths: tuple[str, ...], no_builtin: bool = False) -> list[Any]:
    from detect.model import load_rules

    extra = [Path(p) for p in paths]
    home_rules = ctx.home / "rules"
    if home_rules.is_dir():
        extra.insert(0, home_rules)
    return load_rules(extra, builtin=not no_builtin)


def rules_option(fn: Any) -> Any:
    """`--rules` (repeatable) and `--no-builtin`: which detection rules to load."""
    fn = click.option("--no-builtin", is_flag=True, help="Leave out the built-in pack.")(fn)
    return click.option(
        "--rules",
        "rule_paths",
        multiple=True,
        type=click.Path(exists=True),
        help="Rules file or directory (YAML or .py); repeat. $AUDITLAKE_HOME/rules is "
        "always read, beside the built-in pack.",
    )(fn)


@click.group()
def detect() -> None:
    """Detection rules: run them (cron-safe, incremental), list them, test them.

    \b
      auditlake detect run                     new events since the last run, every rule
      auditlake detect run --since 30d         backfill the last 30 days
      auditlake detect list                    the rules, their windows and thresholds
      auditlake detect test                    every rule's test cases; exit 1 on failure
      auditlake detect schedule                a crontab line and a systemd timer
      auditlake detect watch --every 60s       the same loop in the foreground
    """


@dataclass(frozen=True)
class RunRequest:
    """What one `detect run` evaluates, and where it sends and prints what it finds."""

    rule_paths: tuple[str, ...]
    no_builtin: bool
    sinks: tuple[str, ...]
    fmt: str = "json"
    since: str | None = None
    until: str | None = None
    tenants: tuple[str, ...] = ()
    engine: Engine = Engine.LOCAL
    address: str | None = None


@detect.command("run")
@rules_option
@click.option("--since", help="Backfill from this event time (2026-11-01, RFC 3339, 30d).")
@click.option("--until", help="Backfill until this event time (default: now).")
@click.option("--tenant", multiple=True, help="Only these tenants (repeat).")
@click.option(
    "--sink",
    multiple=True,
    help="Also send new alerts to: stdout, jsonl:PATH, webhook:URL, syslog:udp://HOST:PORT, "
    "syslog:tcp://HOST:PORT, syslog:/dev/log. Repeat for several.",
)
@engine_options
@format_option("table", "json")
@pass_ctx
@handle_errors
def detect_run(ctx: Ctx, /, sink: tuple[str, ...], tenant: tuple[str, ...], **given: Any) -> None:
    """Run the rules over events new since the last run (or over --since/--until).

    Safe from cron every minute: a lock keeps runs from overlapping (a second run exits
    0 at once), alert ids are deterministic so overlaps and reruns add nothing, and the
    watermark follows the lake's commits, so late events are not missed. New and changed
    alerts go to the `alerts` table and to every --sink.

    Each sink is served on its own: one that fails keeps its alerts in a spool in the
    lake, retried first by the next run with the same --sink, and the run exits 1 after
    a line per sink on stderr (--format json: a status per sink under "sinks"). With
    --format json stdout is one line: the run's summary, per rule inside.

    With --engine ray the rules are evaluated on a Ray cluster, one task per tenant;
    watermarks, sinks and the alerts table are handled here as always, with the same
    alerts.
    """
    ctx.require_operator("detect run")
    given["address"] = engine_address(given["engine"], given["address"])
    given["engine"] = Engine(given["engine"])
    result = _run_once(ctx, RunRequest(sinks=sink, tenants=tenant, **given))
    if result is not None and not result.delivered:
        # The alerts are in the lake; what a sink missed is spooled for the next run.
        raise SystemExit(int(ExitCode.FINDING))


def _run_once(ctx: Ctx, req: RunRequest) -> Any:
    from detect.runner import RunBusy, run
    from detect.sinks import parse_sink
    from lake.query import parse_time

    lake = ctx.open()
    rules = _rules(ctx, req.rule_paths, req.no_builtin)
    sinks = [parse_sink(s) for s in req.sinks]
    try:
        with contextlib.ExitStack() as stack:
            evaluate = None
            if req.engine is Engine.RAY:
                from detect.distributed import ray_evaluate
                from lake.verify import ray_session

                evaluate = ray_evaluate(stack.enter_context(ray_session(req.address)))
            update = stack.enter_context(progress("detect"))
            result = run(
                lake,
                rules,
                since=parse_time(req.since) if req.since is not None else None,
                until=parse_time(req.until) if req.until is not None else None,
                tenants=list(req.tenants) or None,
                sinks=sinks,
                progress=update,
                evaluate=evaluate,
            )
    except RunBusy as exc:
        note(f"auditlake: {exc}")
        return None
    finally:
        for s in sinks:
            s.close()
    _print_run(result, req.fmt)
    return result


def _print_run(result: Any, fmt: str) -> None:
    if fmt == "json":
        # One line per run: cron and `detect watch` append these to one log.
        sys.stdout.write(orjson.dumps(result.as_dict(), option=orjson.OPT_SORT_KEYS).decode())
        sys.stdout.write("\n")
        sys.stdout.flush()
        for report in result.sinks:  # failures only: the summary carries the rest
            if not report.ok:
                note(report.line())
        return
    emit_table(
        None,
        ["rule", "mode", "tenants", "alerts", "new", "changed"],
        [[r.rule_id, r.mode, r.tenants, r.alerts, r.new, r.changed] for r in result.rules],
    )
    for report in result.sinks:
        note(report.line())
    note(
        f"{len(result.new)} new and {len(result.changed)} updated alert(s); "
        f"lake version {result.version}"
    )


@detect.command("list")
@rules_option
@format_option("table", "json")
@pass_ctx
@handle_errors
def detect_list(ctx: Ctx, rule_paths: tuple[str, ...], no_builtin: bool, fmt: str) -> None:
    """The rules: id, kind, severity, window, grouping, threshold, tags, test cases."""
    rules = _rules(ctx, rule_paths, no_builtin)
    if fmt == "json":
        emit_json([r.summary() for r in rules])
        return
    emit_table(
        None,
        ["id", "kind", "severity", "window", "group by", "threshold", "tests", "title"],
        [
            [s["id"], s["kind"], s["severity"], s["window"], ",".join(s["group_by"]),
             s["threshold"], s["tests"], s["title"]]
            for s in (r.summary() for r in rules)
        ],
    )  # fmt: skip


@detect.command("test")
@rules_option
@format_option("table", "json")
@pass_ctx
@handle_errors
def detect_test(ctx: Ctx, rule_paths: tuple[str, ...], no_builtin: bool, fmt: str) -> None:
    """Run every rule's test cases (events in, expected alerts out); exit 1 on any failure."""
    from detect.testing import run_tests

    results = run_tests(_rules(ctx, rule_paths, no_builtin))
    failed = [r for r in results if not r.ok]
    if fmt == "json":
        emit_json(
            [{"rule": r.rule_id, "case": r.case, "ok": r.ok, "problems": r.problems}
             for r in results]
        )  # fmt: skip
    else:
        emit_table(
            None,
            ["rule", "case", "result"],
            [[r.rule_id, r.case, "ok" if r.ok else "; ".join(r.problems)] for r in results],
        )
    note(f"{len(results) - len(failed)} of {len(results)} test case(s) passed")
    if failed:
        raise SystemExit(int(ExitCode.FINDING))
    if not results:
        fail("no test cases found")


@detect.command("schedule")
@click.option(
    "--every",
    default="1m",
    show_default=True,
    help="How often: minutes dividing 60 (1m, 5m, 15m), hours dividing 24 (1h, 2h, 6h), 1d, 7d.",
)
@pass_ctx
@handle_errors
def detect_schedule(ctx: Ctx, every: str) -> None:
    """Print a crontab line and a systemd service + timer that run `detect run`.

    Only intervals one crontab line runs at exactly are accepted: cron's `*/N` restarts
    every hour or day, so `*/120` would run hourly and `*/7` unevenly; others exit 2.
    """
    from detect.model import parse_duration
    from detect.schedule import cron_spec

    interval = parse_duration(every, "--every")
    seconds = int(interval.total_seconds())
    spec = cron_spec(interval)
    where = str(ctx.lake_path)
    lake = where if "://" in where else str(Path(where).expanduser().resolve())
    argv0 = sys.argv[0] if sys.argv and sys.argv[0].endswith("auditlake") else "auditlake"
    exe = shlex.quote(argv0)
    env = f"AUDITLAKE_HOME={shlex.quote(str(ctx.home))} AUDITLAKE_LAKE={shlex.quote(lake)}"
    click.echo("# crontab -e (runs never overlap: a second one exits at once)")
    click.echo(f"{spec} {env} {exe} detect run --format json >> /var/log/auditlake-detect.log 2>&1")
    click.echo("")
    click.echo("# /etc/systemd/system/auditlake-detect.service")
    click.echo("[Unit]\nDescription=auditlake detection run\n")
    click.echo("[Service]\nType=oneshot")
    click.echo(f"Environment=AUDITLAKE_HOME={ctx.home}\nEnvironment=AUDITLAKE_LAKE={lake}")
    click.echo(f"ExecStart={exe} detect run --format json\n")
    click.echo("# /etc/systemd/system/auditlake-detect.timer")
    click.echo("[Unit]\nDescription=auditlake detection every " + every + "\n")
    click.echo(f"[Timer]\nOnBootSec={seconds}s\nOnUnitActiveSec={seconds}s\nAccuracySec=1s\n")
    click.echo("[Install]\nWantedBy=timers.target")


@detect.command("watch")
@click.option("--every", default="60s", show_default=True, help="Pause between runs.")
@rules_option
@click.option("--sink", multiple=True, help="As for `detect run`.")
@pass_ctx
@handle_errors
def detect_watch(
    ctx: Ctx, every: str, rule_paths: tuple[str, ...], no_builtin: bool, sink: tuple[str, ...]
) -> None:
    """Run `detect run` in the foreground every --every until Ctrl-C or SIGTERM."""
    from detect.model import parse_duration

    ctx.require_operator("detect watch")
    pause = parse_duration(every, "--every").total_seconds()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.set())
    while not stop.is_set():
        _run_once(ctx, RunRequest(rule_paths, no_builtin, sink))
        stop.wait(pause)
    note("auditlake: detect watch stopped")
