"""`auditlake detect …` and `auditlake alerts list`: CLI wiring of `detect`.

Registered on the `cli` group by `auditlake.cli`.
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import orjson

from auditlake.cli import (
    Ctx,
    cli,
    engine_address,
    engine_options,
    format_option,
    handle_errors,
    pass_ctx,
)
from auditlake.output import ExitCode, emit_json, emit_table, fail, note, progress
from lake.secrets import Permission, encrypted, keyring_for, open_alerts


def _rules(ctx: Ctx, paths: tuple[str, ...], no_builtin: bool = False) -> list[Any]:
    from detect.model import load_rules

    extra = [Path(p) for p in paths]
    home_rules = ctx.home / "rules"
    if home_rules.is_dir():
        extra.insert(0, home_rules)
    return load_rules(extra, builtin=not no_builtin)


def rules_option(fn: Any) -> Any:
    fn = click.option("--no-builtin", is_flag=True, help="Leave out the built-in pack.")(fn)
    return click.option(
        "--rules",
        "rule_paths",
        multiple=True,
        type=click.Path(exists=True),
        help="Rules file or directory (YAML or .py); repeat. $AUDITLAKE_HOME/rules is "
        "always read, beside the built-in pack.",
    )(fn)


def _time(value: str | None, what: str) -> datetime | None:
    from lake.query import parse_time

    if value is None:
        return None
    return parse_time(value)


@cli.group()
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
def detect_run(
    ctx: Ctx,
    rule_paths: tuple[str, ...],
    no_builtin: bool,
    since: str | None,
    until: str | None,
    tenant: tuple[str, ...],
    sink: tuple[str, ...],
    engine: str,
    address: str | None,
    fmt: str,
) -> None:
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
    ray_address = engine_address(engine, address)
    result = _run_once(
        ctx, rule_paths, no_builtin, since, until, tenant, sink, fmt,
        engine=engine, address=ray_address,
    )  # fmt: skip
    if result is not None and not result.delivered:
        # The alerts are in the lake; what a sink missed is spooled for the next run.
        raise SystemExit(int(ExitCode.FINDING))


def _run_once(
    ctx: Ctx,
    rule_paths: tuple[str, ...],
    no_builtin: bool,
    since: str | None,
    until: str | None,
    tenant: tuple[str, ...],
    sink: tuple[str, ...],
    fmt: str,
    *,
    engine: str = "local",
    address: str | None = None,
) -> Any:
    from detect.runner import RunBusy, run
    from detect.sinks import parse_sink

    lake = ctx.open()
    rules = _rules(ctx, rule_paths, no_builtin)
    sinks = [parse_sink(s) for s in sink]
    try:
        with contextlib.ExitStack() as stack:
            evaluate = None
            if engine == "ray":
                from detect.distributed import ray_evaluate
                from lake.verify import ray_session

                evaluate = ray_evaluate(stack.enter_context(ray_session(address)))
            update = stack.enter_context(progress("detect"))
            result = run(
                lake,
                rules,
                since=_time(since, "--since"),
                until=_time(until, "--until"),
                tenants=list(tenant) or None,
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
    if fmt == "json":
        # One line per run: cron and `detect watch` append these to one log.
        sys.stdout.write(orjson.dumps(result.as_dict(), option=orjson.OPT_SORT_KEYS).decode())
        sys.stdout.write("\n")
        sys.stdout.flush()
        for report in result.sinks:  # failures only: the summary carries the rest
            if not report.ok:
                note(report.line())
    else:
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
    return result


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
    stop = {"now": False}

    def _stop(signum: int, frame: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not stop["now"]:
        _run_once(ctx, rule_paths, no_builtin, None, None, (), sink, "json")
        deadline = time.monotonic() + pause
        while not stop["now"] and time.monotonic() < deadline:
            time.sleep(0.2)
    note("auditlake: detect watch stopped")


# -- alerts -------------------------------------------------------------------------------


@cli.group()
def alerts() -> None:
    """Alerts written by detection runs."""


@alerts.command("list")
@click.option("--tenant", multiple=True, help="Only these tenants (repeat).")
@click.option("--rule", "rule_ids", multiple=True, help="Only these rule ids (repeat).")
@click.option(
    "--severity", multiple=True, help="Only these severities (info, low, medium, high, critical)."
)
@click.option("--since", help="Alerts last seen at or after this time (2026-11-01, 7d, ...).")
@format_option("table", "json", "jsonl")
@pass_ctx
@handle_errors
def alerts_list(
    ctx: Ctx,
    tenant: tuple[str, ...],
    rule_ids: tuple[str, ...],
    severity: tuple[str, ...],
    since: str | None,
    fmt: str,
) -> None:
    """Alerts of the tenants you may read, newest first; each names its evidence events.

    `auditlake prove EVENT_ID --tenant T` proves any of an alert's event_ids.
    """
    import orjson

    from detect.sinks import alert_json
    from lake.query import ReadAudit
    from lake.secrets import AccessDenied, check_reach, logged_tenants

    lake = ctx.open()
    who = ctx.who()
    audit = ReadAudit(lake, ctx.keys().active(), source="auditlake-cli")
    asked = " ".join(
        [
            *(f"tenant:{t}" for t in tenant),
            *(f"rule:{r}" for r in rule_ids),
            *(f"severity:{s}" for s in severity),
            *([f"since:{since}"] if since else []),
        ]
    )
    try:  # unknown principal or tenant: refused, and recorded like a refused search
        check_reach(who, Permission.READ_ALERTS, logged_tenants(lake), list(tenant))
    except AccessDenied as exc:
        audit.record(who, interface="cli.alerts", query=asked, tenants=list(tenant),
                     outcome="failure", reason=str(exc))  # fmt: skip
        raise
    known = set(lake.read_alerts().column("tenant").to_pylist())
    scope = set(tenant) if tenant else {t for t in known if who.may(Permission.READ_ALERTS, t)}
    audit.record(who, interface="cli.alerts", query=asked, tenants=sorted(scope))
    cutoff = _time(since, "--since")
    stored = lake.read_alerts(scope).to_pylist()
    if encrypted(lake):  # titles and groups quote the events' sealed fields
        stored = open_alerts(keyring_for(lake, ctx.home), stored)
    rows = [
        r
        for r in stored
        if (not rule_ids or r["rule_id"] in rule_ids)
        and (not severity or r["severity"] in severity)
        and (cutoff is None or r["last_seen"] >= cutoff)
    ]
    rows.sort(key=lambda r: (r["last_seen"], r["alert_id"]), reverse=True)
    out = [alert_json(r) for r in rows]
    if fmt == "json":
        emit_json(out)
    elif fmt == "jsonl":
        for item in out:
            sys.stdout.write(orjson.dumps(item, option=orjson.OPT_SORT_KEYS).decode() + "\n")
    else:
        emit_table(
            None,
            ["last seen", "tenant", "severity", "rule", "events", "title", "alert"],
            [[a["last_seen"][:19], a["tenant"], a["severity"], a["rule_id"], a["event_count"],
              a["title"], a["alert_id"]] for a in out],
        )  # fmt: skip
