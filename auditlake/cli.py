"""The `auditlake` command: thin wiring of `lake` and `ingest`, nothing else.

Exit codes: 0 success, 1 the check found a problem, 2 usage or input error (a one-line
reason on stderr). `--format json` output is stable; tables are for people.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from auditlake.output import ExitCode, emit_json, emit_table, fail, note, progress
from lake.contract import Issue, LakeError, ProofError, ValidationError
from lake.log import VerifierKey
from lake.proofs import check_proof, prove, prove_consistency
from lake.secrets import (
    LOCAL_OPERATOR,
    AccessDenied,
    AccessPolicy,
    KeyStore,
    Permission,
    Principal,
    TrustStore,
    check_principal,
    check_reach,
    config_home,
    ensure_outside,
    logged_tenants,
    parse_verifier_keys,
)
from lake.storage import Lake, check_lake_name, check_tenant
from lake.verify import Report, parse_exported, record_report, verify_lake
from lake.witness import CosignerKey
from lake.write import append, seal

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_LAKE = "./auditlake-data"
MAX_ERRORS_SHOWN = 20
DEFAULT_BATCH = 500_000


class Ctx:
    """What every command needs: where the lake and the config home are, and who asks."""

    def __init__(self, lake: str, principal: str) -> None:
        self.lake_path = lake
        self.principal = principal
        self.home = config_home()

    def open(self) -> Lake:
        return Lake.open(self.lake_path)

    def keys(self) -> KeyStore:
        return KeyStore(self.home)

    def who(self) -> Principal:
        """The principal with its grants from the config home's access policy."""
        return AccessPolicy(self.home).principal(self.principal)

    def require_operator(self, what: str) -> None:
        """Writes and management are the local operator's (per-tenant roles are for reads)."""
        if self.principal != LOCAL_OPERATOR:
            fail(f"{what} is reserved for the local operator {LOCAL_OPERATOR!r} (--as admin)")


def handle_errors(fn: F) -> F:
    """Turn library errors into a one-line message and exit code 2 (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ValidationError as exc:
            for issue in exc.issues[:MAX_ERRORS_SHOWN]:
                note(f"{exc.source}: {issue}")
            if len(exc.issues) > MAX_ERRORS_SHOWN:
                note(f"… and {len(exc.issues) - MAX_ERRORS_SHOWN} more")
            fail(f"{exc.source}: {len(exc.issues)} problem(s); nothing was written")
        except LakeError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            fail("interrupted", ExitCode.USAGE)
        except BrokenPipeError:
            raise  # the reader went away: main() ends quietly
        except OSError as exc:  # the machine's refusal (full disk, read-only, permissions)
            fail(os_error_line(exc))

    return wrapper  # type: ignore[return-value]


def os_error_line(exc: OSError) -> str:
    """One line for an error of the machine, naming the path and errno, never a traceback:
    what a full disk or a read-only mount under a long job looks like to its operator."""
    where = f"{exc.filename}: " if exc.filename else ""
    what = exc.strerror or type(exc).__name__
    name = errno.errorcode.get(exc.errno or 0)
    return f"{where}{what}" + (f" ({name})" if name else "")


def format_option(
    *choices: str, default: str = "table", flag: str = "--format"
) -> Callable[[F], F]:
    """The shared output-format option (`--format`, or `flag` where `--format` is taken)."""
    return click.option(
        flag,
        "fmt",
        type=click.Choice(list(choices)),
        default=default,
        show_default=True,
        help="Output format: tables for people, json for programs.",
    )


def engine_options(fn: F) -> F:
    """`--engine local|ray` and `--address`: where verify and detect run their work."""
    fn = click.option(
        "--address",
        metavar="HOST:PORT",
        help="With --engine ray: the Ray cluster to use (the address `ray start --head` "
        "prints). Default: $RAY_ADDRESS, else a local Ray instance for this run with one "
        "worker per core.",
    )(fn)
    return click.option(
        "--engine",
        type=click.Choice(["local", "ray"]),
        default="local",
        show_default=True,
        help="local: this machine, one process per core; ray: tasks per tenant and seq "
        "range on a Ray cluster (the 'scale' extra), with the same results.",
    )(fn)


def engine_address(engine: str, address: str | None) -> str | None:
    """The Ray address to use (None: start a local instance); refuse --address without ray."""
    if engine != "ray":
        if address:
            fail("--address needs --engine ray")
        return None
    return address or os.environ.get("RAY_ADDRESS") or None


def tenant_option(required: bool = True, multiple: bool = False) -> Callable[[F], F]:
    return click.option(
        "--tenant",
        "tenant",
        required=required,
        multiple=multiple,
        help="Tenant id." + (" Repeat for several." if multiple else ""),
    )


# The two global options, also accepted after any subcommand (`auditlake demo --lake D`,
# `auditlake keys list --as bob`): a user writes them where the README's examples put them.
# Given after the subcommand they win over the ones before it and over the environment.
GLOBAL_OPTIONS = {
    "--lake": ("lake_path", "Lake directory (or URI); same as the global --lake."),
    "--as": ("principal", "Principal to act as; same as the global --as."),
}


def _set_global(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """Callback of a subcommand's --lake/--as: overrides what the group's option set."""
    if value is None:
        return
    obj = ctx.find_object(Ctx)
    if obj is None:  # `--help` of a subcommand: the group's callback has not run
        return
    attr = GLOBAL_OPTIONS[param.opts[0]][0]
    if attr == "principal":
        try:
            check_principal(value)
        except LakeError as exc:
            fail(str(exc))
    setattr(obj, attr, value)


def _attach_globals(command: click.Command) -> None:
    """Give every subcommand (nested groups too) its own --lake and --as, once."""
    for sub in getattr(command, "commands", {}).values():
        taken = {o for p in sub.params for o in getattr(p, "opts", ())}
        for flag, (name, help_text) in GLOBAL_OPTIONS.items():
            if flag in taken:
                continue
            sub.params.append(
                click.Option(
                    [flag, f"_global_{name}"],
                    expose_value=False,
                    callback=_set_global,
                    help=help_text,
                )
            )
        _attach_globals(sub)


class AuditlakeGroup(click.Group):
    """The root group: before running, every subcommand learns --lake and --as."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        _attach_globals(self)
        return super().main(*args, **kwargs)


@click.group(
    cls=AuditlakeGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--lake",
    envvar="AUDITLAKE_LAKE",
    default=DEFAULT_LAKE,
    show_default=True,
    help="Lake directory (or URI). Env: AUDITLAKE_LAKE.",
)
@click.option(
    "--as",
    "principal",
    envvar="AUDITLAKE_PRINCIPAL",
    default="admin",
    show_default=True,
    help="Principal to act as; the local operator is admin. Env: AUDITLAKE_PRINCIPAL.",
)
@click.version_option(package_name="auditlake")
@click.pass_context
def cli(ctx: click.Context, lake: str, principal: str) -> None:
    """auditlake: tamper-evident audit trails for many tenants, on Delta Lake.

    Events are appended as signed batches to a per-tenant Merkle log; anyone with the
    public key can prove that no event was changed, removed, reordered or inserted.

    \b
    Start here:
      auditlake demo                       build a demo lake with planted attacks
      auditlake init --name acme           create a lake and a signing key
      auditlake ingest events.jsonl        append events (jsonl/json/csv/parquet, - for stdin)
      auditlake verify                     check every event, checkpoint and signature
      auditlake search 'actor:alice outcome:failure created:>=7d'
      auditlake sql "SELECT action, count(*) FROM events GROUP BY 1"
      auditlake detect run                 run the detection rules (cron-safe)
      auditlake alerts list                what they found
      auditlake tui                        the investigator's terminal UI
      auditlake dashboard                  the auditor's web dashboard

    Private keys and trusted verifier keys live in the config home ($AUDITLAKE_HOME),
    never in the lake. Exit codes: 0 ok, 1 a check found a problem, 2 usage or input error.
    """
    try:
        check_principal(principal)
    except LakeError as exc:
        fail(str(exc))
    ctx.obj = Ctx(lake, principal)
    if ctx.invoked_subcommand is not None and unfinished_shred(ctx.obj.home):
        note(
            "auditlake: warning: a `keys shred` stopped before it finished (the config home "
            "still holds the master key it was replacing): run the same `keys shred` again; "
            "until then a copy of the lake made before it can still be decrypted"
        )


def unfinished_shred(home: Path) -> bool:
    """Whether a shred's master-key rotation was interrupted (lake/secrets/_masterkey.py): its new
    key is on disk beside the old one, which stays readable until the rotation ends."""
    from lake.secrets import NEXT_FILE

    return (home / NEXT_FILE).exists()


pass_ctx = click.make_pass_decorator(Ctx)


# -- init and keys ------------------------------------------------------------------------


def _default_key_name(lake_name: str) -> str:
    from datetime import UTC, datetime

    return f"{lake_name}-{datetime.now(UTC).strftime('%Y%m%d')}"


def _ensure_signer(ctx: Ctx, lake_name: str) -> tuple[Any, bool]:
    store = ctx.keys()
    if store.active_name() is not None:
        return store.active(), False
    signer = store.generate(_default_key_name(lake_name))
    TrustStore(ctx.home).add(signer.verifier_key)
    return signer, True


@cli.command()
@click.option("--name", help="Lake name, used in checkpoint origins (default: from the path).")
@click.option(
    "--encrypt",
    is_flag=True,
    help="Encrypt details, actor_ip and user_agent at rest with per-tenant data keys "
    "(master key in the config home); enables `keys shred`.",
)
@pass_ctx
@handle_errors
def init(ctx: Ctx, name: str | None, encrypt: bool) -> None:
    """Create a lake, and a signing key in the config home if there is none.

    Prints the verifier key (name+hash+base64) on stdout: give it to whoever must verify
    the lake. Your own key is added to the config home's trusted keys.
    """
    ctx.require_operator("init")
    path: str | Path
    if "://" in ctx.lake_path:  # an object store: checked (reachable, empty) before any key
        path = Lake.check_new(ctx.lake_path)
        base = path.rsplit("/", 1)[-1]
    else:
        path = Path(ctx.lake_path).expanduser().resolve()
        ensure_outside(ctx.home, path)
        try:  # before any key is made: a file in the way must not leave an orphan key behind
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            fail(f"cannot create the lake at {path}: {exc.strerror or exc}")
        base = path.name
    lake_name = name or re.sub(r"[^a-z0-9._-]", "-", base.lower()).strip("-._") or "lake"
    check_lake_name(lake_name)  # before any key is created for it
    signer, created = _ensure_signer(ctx, lake_name)
    extra = None
    if encrypt:
        from lake.secrets import FIELDS, master_key

        master_key(ctx.home, create=True)
        extra = {"encryption": {"enabled": True, "fields": list(FIELDS)}}
    lake = Lake.init(path, lake_name, signer.verifier_key.encode(), extra=extra)
    note(f"created lake {lake.name!r} at {lake.root}" + (" (encrypted fields)" if encrypt else ""))
    if created:
        note(f"created signing key {signer.name!r} in {ctx.keys().dir} (mode 0600)")
    else:
        note(f"signing with existing key {signer.name!r}")
    click.echo(signer.verifier_key.encode())


@cli.group()
def keys() -> None:
    """Manage signing keys (kept in the config home, never in the lake)."""


@keys.command("generate")
@click.option("--name", required=True, help="Key name (letters, digits, '.', '_', '-').")
@click.option("--no-activate", is_flag=True, help="Create the key without signing with it.")
@pass_ctx
@handle_errors
def keys_generate(ctx: Ctx, name: str, no_activate: bool) -> None:
    """Create a new Ed25519 signing key (mode 0600) and print its verifier key."""
    ctx.require_operator("keys generate")
    signer = ctx.keys().generate(name, activate=not no_activate)
    TrustStore(ctx.home).add(signer.verifier_key)
    click.echo(signer.verifier_key.encode())


@keys.command("list")
@format_option("table", "json")
@pass_ctx
@handle_errors
def keys_list(ctx: Ctx, fmt: str) -> None:
    """List signing keys, marking the one that signs new checkpoints."""
    infos = ctx.keys().list()
    if fmt == "json":
        emit_json(
            [{"name": k.name, "verifier_key": k.verifier_key, "active": k.active} for k in infos]
        )
    else:
        emit_table(
            None,
            ["name", "active", "verifier key"],
            [[k.name, "yes" if k.active else "", k.verifier_key] for k in infos],
        )


@keys.command("rotate")
@click.option("--name", required=True, help="Name of the new key.")
@pass_ctx
@handle_errors
def keys_rotate(ctx: Ctx, name: str) -> None:
    """Create a new signing key and announce it in every tenant's log, signed by both keys.

    Verifiers that trust only the old key follow the announcement to the new one; the old
    key is trusted here until now (not-after). Restart running collectors afterwards.
    Then `auditlake keys retire OLD` destroys the old private key.
    """
    from lake.write import rotate

    ctx.require_operator("keys rotate")
    done = rotate(ctx.open(), ctx.keys(), TrustStore(ctx.home), name)
    for tenant, size in sorted(done.announced.items()):
        note(f"{tenant}: new key announced at size {size}, signed by {done.old} and {done.new}")
    click.echo(done.verifier_key)


@keys.command("retire")
@click.argument("name")
@pass_ctx
@handle_errors
def keys_retire(ctx: Ctx, name: str) -> None:
    """Destroy a (non-active) private key; its public half and history stay verifiable."""
    ctx.require_operator("keys retire")
    ctx.keys().retire(name)
    note(f"private key {name!r} overwritten and removed; checkpoints it signed still verify")


@keys.command("revoke")
@click.argument("name")
@click.option("--at", "when", required=True, help="Compromised from this time (RFC 3339 or date).")
@pass_ctx
@handle_errors
def keys_revoke(ctx: Ctx, name: str, when: str) -> None:
    """Mark a trusted key compromised from a time: checkpoints it signed later are findings."""
    from lake.query import parse_time

    ctx.require_operator("keys revoke")
    trust = TrustStore(ctx.home)
    matches = [k for k in trust.keys() if k.name == name]  # noqa: SIM118 - not a dict
    if not matches:
        fail(f"no trusted key named {name!r}")
    at = parse_time(when)
    for key in matches:
        trust.set_attr(key, "revoked", at)
    note(f"{name}: revoked from {at:%Y-%m-%dT%H:%M:%SZ}")
    if ctx.keys().active_name() == name:
        note("warning: this is the active signing key; run `auditlake keys rotate` now")


@keys.command("shred")
@click.option("--tenant", required=True, help="Tenant whose data keys to destroy.")
@click.option("--subject", help="Only this actor's key (a GDPR erasure of one person).")
@click.option("--yes", is_flag=True, help="Confirm: those encrypted fields become unreadable.")
@pass_ctx
@handle_errors
def keys_shred(ctx: Ctx, tenant: str, subject: str | None, yes: bool) -> None:
    """Crypto-shred a tenant, or one subject (actor) of it: destroy the data keys.

    details, actor_ip and user_agent of those events become unreadable for good, while
    every event, checkpoint and proof still verifies (the leaves cover the ciphertext).
    Recorded as a signed key.shred event (naming a subject only by its hash). Refused
    under a legal hold. Rotates the config home's master key, so copies of the lake made
    before the shred cannot be decrypted any more.
    """
    import hashlib
    from datetime import UTC, datetime

    from lake.secrets import encrypted, keyring_for
    from lake.write import record_action

    ctx.require_operator("keys shred")
    lake = ctx.open()
    check_tenant(tenant)
    if not encrypted(lake):
        fail("this lake was not created with --encrypt: there is no data key to shred")
    if not yes:
        fail("this destroys encrypted fields for good; add --yes to confirm")
    details = {}
    if subject is not None:
        details["subject_sha256"] = hashlib.sha256(f"{tenant}\0{subject}".encode()).hexdigest()
    ring = keyring_for(lake, ctx.home)
    ring.check_shred(tenant)  # a hold or an unrotatable master key: refused before the record
    record_action(
        lake, ctx.keys().active(), ctx.who(), "key.shred", tenant, details, datetime.now(UTC)
    )
    gone = ring.shred(tenant, subject)
    who = f"subject of {tenant}" if subject else tenant
    note(f"{who}: {gone} data key(s) destroyed; their encrypted fields now read as NULL")


@keys.command("export")
@click.option("--name", help="Only this key.")
@pass_ctx
@handle_errors
def keys_export(ctx: Ctx, name: str | None) -> None:
    """Print verifier keys (name+hash+base64), one a line."""
    infos = [k for k in ctx.keys().list() if name is None or k.name == name]
    if not infos:
        fail("no signing keys in the config home" if name is None else f"no key named {name!r}")
    for k in infos:
        click.echo(k.verifier_key)


# -- ingest and seal ----------------------------------------------------------------------


@cli.command()
@click.argument("files", nargs=-1, required=True)
@click.option(
    "--format",
    "input_format",
    type=click.Choice(["jsonl", "json", "csv", "parquet"]),
    help="Input format (default: by extension; stdin is sniffed).",
)
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Ingest the valid events and write rejects to a file beside the input.",
)
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False),
    help="Where to write rejects (default: <input>.rejects.jsonl).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 10_000_000),
    default=DEFAULT_BATCH,
    show_default=True,
    help="Events per signed batch; also what bounds ingest's memory.",
)
@click.option(
    "--max-future-skew",
    metavar="DURATION",
    envvar="AUDITLAKE_MAX_FUTURE_SKEW",
    help="Refuse events whose time is further than this ahead of this machine's clock, "
    "e.g. 24h, 90m, 0s (default 24h; env AUDITLAKE_MAX_FUTURE_SKEW). Times before 1970 "
    "are always refused.",
)
# `--format` is the input format here (the contract), so the summary's format needs its own flag.
@format_option("table", "json", flag="--output-format")
@pass_ctx
@handle_errors
def ingest(
    ctx: Ctx,
    files: tuple[str, ...],
    input_format: str | None,
    skip_invalid: bool,
    rejects: str | None,
    batch_size: int,
    max_future_skew: str | None,
    fmt: str,
) -> None:
    """Append events from FILES ('-' for stdin) as signed batches.

    Every input is validated before anything is written: by default one invalid event
    rejects the whole command (exit 2, every problem named). Events already in the lake
    (same tenant and id) are skipped, so running the same ingest twice is safe; so are
    repeats of an event sent without an id (its id comes from its content).
    A lake that cannot be written, a closed stdin or a full spool disk is a one-line
    error with exit 2, before anything is written.
    """
    ctx.require_operator("ingest")
    from deltalake.exceptions import DeltaError

    from ingest.files import open_input, spool_dir_for, write_rejects
    from lake.contract import parse_duration

    skew = parse_duration(max_future_skew) if max_future_skew else None
    lake = ctx.open()
    if "://" not in ctx.lake_path:
        # Root ignores permission bits but not a read-only mount; access(2) sees both.
        for part in (Path(ctx.lake_path), Path(ctx.lake_path) / "events"):
            if part.exists() and not os.access(part, os.W_OK):
                fail(f"{ctx.lake_path}: the lake is not writable (read-only); nothing was written")
    signer = ctx.keys().active()
    summary: dict[str, Any] = {"inputs": [], "appended": 0, "duplicates": 0, "rejected": 0}
    # Every input is validated whole and spooled (an anonymous temporary file) before
    # anything is written; the appends then read the spools back a batch at a time.
    with contextlib.ExitStack() as spools:
        loaded = []
        for name in files:
            with progress(f"read {name}") as update:
                inp = spools.enter_context(
                    open_input(
                        name,
                        input_format,
                        workers=os.cpu_count() or 1,
                        progress=update,
                        spool_dir=spool_dir_for(ctx.lake_path),
                        max_future_skew=skew,
                    )
                )
            if inp.rejected and not skip_invalid:
                raise ValidationError(inp.issues, source=inp.name)
            loaded.append(inp)
        written: set[Path] = set()
        for inp in loaded:
            entry: dict[str, Any] = {
                "input": inp.name,
                "format": inp.format,
                "events": inp.total,
                "rejected": len(inp.rejected),
                "batches": [],
            }
            if inp.rejected:
                target = (
                    Path(rejects)
                    if rejects
                    else Path(
                        "stdin.rejects.jsonl"
                        if inp.name == "stdin"
                        else f"{inp.name}.rejects.jsonl"
                    )
                )
                write_rejects(target, inp, append=target in written)
                written.add(target)
                entry["rejects_file"] = str(target)
                note(f"{inp.name}: {len(inp.rejected)} invalid event(s) written to {target}")
            summary["duplicates"] += inp.repeats  # identical id-less events: one kept
            with progress(f"ingest {inp.name}") as update:
                done = 0
                for chunk in inp.batches(batch_size):
                    try:
                        result = append(lake, chunk, signer, progress=update)
                    except ValidationError as exc:  # an id that another event already uses
                        moved = [Issue(i.index + done, i.field, i.message) for i in exc.issues]
                        earlier = len(entry["batches"]) + sum(
                            len(e["batches"]) for e in summary["inputs"]
                        )
                        if not earlier:
                            raise ValidationError(moved, source=inp.name) from None
                        # Batches commit whole: the earlier ones stand, and saying "nothing
                        # was written" would send the operator looking for nothing.
                        for issue in moved[:MAX_ERRORS_SHOWN]:
                            note(f"{inp.name}: {issue}")
                        fail(
                            f"{inp.name}: {len(moved)} problem(s) in its batch "
                            f"{len(entry['batches']) + 1}; {earlier} earlier batch(es) "
                            f"({summary['appended']} event(s)) were committed, nothing after "
                            "them"
                        )
                    except (OSError, DeltaError) as exc:
                        # Each batch commits whole or not at all: the earlier ones stand.
                        text = str(exc).strip()
                        reason = text.splitlines()[-1] if text else type(exc).__name__
                        fail(
                            f"{ctx.lake_path}: cannot write to the lake ({reason}); "
                            f"{len(entry['batches'])} batch(es) of {inp.name} were committed "
                            "before this"
                        )
                    done += chunk.num_rows
                    entry["batches"].append(
                        {
                            "batch_id": result.batch_id,
                            "appended": result.appended,
                            "duplicates": result.duplicates,
                            "tenants": {
                                t.tenant: {"appended": t.appended, "tree_size": t.tree_size}
                                for t in result.tenants
                            },
                        }
                    )
                    summary["appended"] += result.appended
                    summary["duplicates"] += result.duplicates
            summary["rejected"] += entry["rejected"]
            summary["inputs"].append(entry)
    # delta-rs does not fsync: flush the lake to disk before reporting success.
    os.sync()
    touched = sorted(
        {t for entry in summary["inputs"] for b in entry["batches"] for t in b["tenants"]}
    )
    summary["witnesses"] = ask_witnesses(ctx, lake, touched)
    if fmt == "json":
        emit_json(summary)
        return
    # One row per tenant (batches add up; the log size is the last one's).
    per_tenant: dict[str, list[int]] = {}
    for entry in summary["inputs"]:
        for b in entry["batches"]:
            for tenant, t in b["tenants"].items():
                row = per_tenant.setdefault(tenant, [0, 0])
                row[0] += t["appended"]
                row[1] = t["tree_size"]
    emit_table(
        "ingested",
        ["tenant", "appended", "log size"],
        [[tenant, appended, size] for tenant, (appended, size) in sorted(per_tenant.items())],
    )
    batches = [b["batch_id"] for entry in summary["inputs"] for b in entry["batches"]]
    if batches:
        note(f"{len(batches)} signed batch(es): {', '.join(batches)}")
    note(
        f"{summary['appended']} event(s) appended, {summary['duplicates']} already present, "
        f"{summary['rejected']} rejected"
    )


@cli.command("seal")
@tenant_option(required=False, multiple=True)
@click.option(
    "--rebuild-tiles",
    is_flag=True,
    help="Rewrite the hash tiles from the stored rows (after a bad_tiles finding); refused "
    "unless the rows match every checkpoint signed by a trusted key.",
)
@pass_ctx
@handle_errors
def seal_cmd(ctx: Ctx, tenant: tuple[str, ...], rebuild_tiles: bool) -> None:
    """Sign checkpoints for events committed but not yet sealed (after a crash).

    Also removes temporary tile files older than ten minutes that a crash or a full disk
    left behind (younger ones may belong to a concurrent writer).
    """
    ctx.require_operator("seal")
    lake = ctx.open()
    tenants = list(tenant) or lake.tenants()
    from lake.log import remove_stale_temp

    for t in tenants:  # temp tile files a crash or a full disk left behind
        if stale := remove_stale_temp(lake, check_tenant(t)):
            note(f"{t}: removed {stale} stale temporary tile file(s)")
    if rebuild_tiles:
        from lake.log import rebuild

        trusted = TrustStore(ctx.home).keys()
        for t in tenants:
            size = rebuild(lake, check_tenant(t), trusted)
            note(f"{t}: hash tiles rebuilt for {size} events")
        return
    results = seal(lake, ctx.keys().active(), tenants)
    for r in results:
        note(f"{r.tenant}: sealed at size {r.tree_size}")
    ask_witnesses(ctx, lake, sorted({r.tenant for r in results}))
    if not results:
        note("nothing to seal")


# -- verify, prove -------------------------------------------------------------------------


def ask_witnesses(ctx: Ctx, lake: Lake, tenants: list[str]) -> list[dict[str, Any]]:
    """After a seal, ask the configured witnesses to cosign (never fails the command)."""
    from lake.witness import load_witnesses, request_cosignatures

    witnesses = load_witnesses(ctx.home)
    out: list[dict[str, Any]] = []
    for tenant in tenants if witnesses else []:
        for r in request_cosignatures(lake, tenant, witnesses):
            out.append(r.__dict__)
            if not r.ok:
                note(f"warning: witness {r.witness} did not cosign {tenant}: {r.message}")
    return out


def scoped_tenants(
    ctx: Ctx, lake: Lake, given: tuple[str, ...], permission: Permission
) -> list[str] | None:
    """The tenants a command may touch: those given (each checked) or all the principal's.

    None means every tenant (the local operator without --tenant).
    """
    who = ctx.who()
    for t in given:
        check_tenant(t)
    existing = logged_tenants(lake)
    check_reach(who, permission, existing, list(given))  # unknown tenant or principal: exit 2
    if given:
        return list(given)
    if who.operator:
        return None
    return who.tenants(permission, existing)


def _trusted(ctx: Ctx, given: tuple[str, ...]) -> list[VerifierKey]:
    return [*TrustStore(ctx.home).keys(), *parse_verifier_keys(list(given))]


def print_report(report: Report, fmt: str) -> None:
    if fmt == "json":
        emit_json(report.as_dict())
        return
    emit_table(
        f"verify {report.lake}",
        ["tenant", "events", "sealed", "checkpoints", "keys", "result"],
        [
            [
                t.tenant,
                t.events,
                t.sealed_size,
                t.checkpoints,
                ", ".join(t.key_names),
                "ok" if t.ok else f"{len(t.findings) + sum(t.suppressed.values())} finding(s)",
            ]
            for t in report.tenants
        ],
    )
    if report.findings:
        emit_table(
            "findings",
            ["tenant", "kind", "seq", "event", "batch", "detail"],
            [[f.tenant, f.kind, f.seq, f.event_id, f.batch_id, f.message] for f in report.findings],
        )
        for t in report.tenants:
            for kind, count in t.suppressed.items():
                note(f"{t.tenant}: {count} more {kind} finding(s) not shown")


@cli.command()
@tenant_option(required=False, multiple=True)
@click.option(
    "--trusted-key",
    multiple=True,
    help="Verifier key(s) to trust, besides the config home's trusted_keys.",
)
@click.option(
    "--since-checkpoint",
    "since",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="File of checkpoint(s) exported earlier; detects rollback of newer batches.",
)
@click.option(
    "--witness-key",
    multiple=True,
    help="A witness's cosigner key (name+hash+base64) whose cosignatures count; repeat.",
)
@click.option(
    "--min-witnesses",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Require this many valid witness cosignatures on each tenant's latest checkpoint.",
)
@engine_options
@format_option("table", "json")
@pass_ctx
@handle_errors
def verify(
    ctx: Ctx,
    tenant: tuple[str, ...],
    trusted_key: tuple[str, ...],
    since: tuple[str, ...],
    witness_key: tuple[str, ...],
    min_witnesses: int,
    engine: str,
    address: str | None,
    fmt: str,
) -> None:
    """Check every event, checkpoint and signature; exit 1 on any finding.

    Recomputes every leaf from the stored rows, rebuilds the Merkle roots, checks each
    checkpoint's signature against trusted keys only, and reports each problem with its
    tenant, seq, event id, batch and kind (modified, missing, duplicate, inserted,
    reordered, bad_signature, untrusted_key, rollback, unsealed, ...).

    With --engine ray the same checks run as tasks per tenant and seq range on a Ray
    cluster (every worker must reach the lake), with the same report.
    """
    ray_address = engine_address(engine, address)
    lake = ctx.open()
    trusted = _trusted(ctx, trusted_key)
    notes: list[str] = []
    for path in since:
        try:
            notes += parse_exported(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"--since-checkpoint {path}: {exc}")
    tenants = scoped_tenants(ctx, lake, tenant, Permission.VERIFY)
    if min_witnesses > len(witness_key):
        fail(f"--min-witnesses {min_witnesses} needs at least that many --witness-key")
    if not trusted:
        note(
            "warning: no trusted keys (config home or --trusted-key): every checkpoint is untrusted"
        )
    options: dict[str, Any] = {
        "tenants": tenants,
        "since": notes,
        "witness_keys": [CosignerKey.parse(k) for k in witness_key],
        "min_witnesses": min_witnesses,
        "windows": TrustStore(ctx.home).windows(),
    }
    with progress("verify") as update:
        if engine == "ray":
            from lake.verify import verify_lake_ray

            report = verify_lake_ray(
                lake,
                trusted,
                address=ray_address,
                progress=lambda d, t: update("events", d, t),
                **options,
            )
        else:
            report = verify_lake(
                lake,
                trusted,
                progress=lambda d, t: update("events", d, t),
                workers=os.cpu_count() or 1,
                **options,
            )
    record_report(lake, report, by=ctx.principal)
    print_report(report, fmt)
    if not report.ok:
        note(f"verify: {len(report.findings)} finding(s)")
        raise SystemExit(int(ExitCode.FINDING))


@cli.command("prove")
@click.argument("event_id", required=False)
@tenant_option(required=True)
@click.option(
    "--consistency",
    "old_size",
    type=click.IntRange(1),
    help="Instead: a consistency proof from this older tree size to the latest.",
)
@pass_ctx
@handle_errors
def prove_cmd(ctx: Ctx, event_id: str | None, tenant: str, old_size: int | None) -> None:
    """Print an inclusion proof of EVENT_ID (JSON), checkable offline with the public key.

    With --consistency N, print instead a proof that the tenant's log at size N is a
    prefix of its latest signed checkpoint.
    """
    from lake.query import ReadAudit

    lake = ctx.open()
    who = ctx.who()
    check_tenant(tenant)
    if not event_id and old_size is None:
        fail("give an EVENT_ID, or --consistency OLD_SIZE")
    # A proof carries the stored row: it is a read, recorded like a search (refused too).
    audit = ReadAudit(lake, ctx.keys().active(), source="auditlake-cli")
    asked = f"consistency:{old_size}" if old_size is not None else f"id:{event_id}"
    try:
        check_reach(who, Permission.PROVE, logged_tenants(lake), [tenant])
    except AccessDenied as exc:
        audit.record(who, interface="cli.prove", query=asked, tenants=[tenant],
                     outcome="failure", reason=str(exc))  # fmt: skip
        raise
    local = [k.verifier_key for k in ctx.keys().list()]
    audit.record(who, interface="cli.prove", query=asked, tenants=[tenant])
    if old_size is not None:
        emit_json(prove_consistency(lake, tenant, old_size, local))
    elif event_id:
        emit_json(prove(lake, tenant, event_id, local))
    else:
        fail("give an EVENT_ID, or --consistency OLD_SIZE")


@cli.command("verify-proof")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "--key",
    multiple=True,
    help="Verifier key to check against (default: the config home's trusted keys).",
)
@pass_ctx
@handle_errors
def verify_proof(ctx: Ctx, file: str, key: tuple[str, ...]) -> None:
    """Check a proof from `prove`, or an evidence pack (zip); exit 1 if anything fails.

    FILE may be '-' for stdin. Checks with the config home's trusted keys or --key only,
    never with a key found inside the proof or pack.
    """
    from lake.proofs import check_pack, is_pack, read_input

    try:
        raw = read_input(file)  # bounded: a proof or pack comes from outside
    except OSError as exc:
        fail(f"{file}: {exc.strerror or exc}")

    keys_ = parse_verifier_keys(list(key), "--key") if key else TrustStore(ctx.home).keys()
    if is_pack(raw):
        if not keys_:
            fail("no verifier key to check the pack with: give --key, or trust one")
        try:
            lines = check_pack(raw, keys_)
        except ProofError as exc:
            note(f"evidence pack FAILED: {exc}")
            raise SystemExit(int(ExitCode.FINDING)) from None
        for line in lines:
            click.echo(f"proof OK: {line}")
        click.echo(f"evidence pack OK: {len(lines)} proof(s)")
        return
    try:
        proof = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        fail(f"{file}: not JSON ({exc})")
    if not keys_:  # nothing to check against is a usage error, not a failed proof
        fail("no verifier key to check the proof with: give --key, or trust one in the config home")
    try:
        message = check_proof(proof, keys_)
    except ProofError as exc:
        note(f"proof FAILED: {exc}")
        raise SystemExit(int(ExitCode.FINDING)) from None
    click.echo(f"proof OK: {message}")


@cli.group()
def checkpoint() -> None:
    """Signed checkpoints, to keep outside the lake."""


@checkpoint.command("export")
@tenant_option(required=False)
@click.option(
    "--to",
    "dest",
    type=click.Path(file_okay=False),
    help="Write every tenant's latest checkpoint under this directory (for cron), as "
    "DIR/<lake>/<tenant>/<tree size>.txt; files are never overwritten.",
)
@pass_ctx
@handle_errors
def checkpoint_export(ctx: Ctx, tenant: str | None, dest: str | None) -> None:
    """Print the tenant's latest signed checkpoint; keep it to detect rollback later.

    With --to DIR (e.g. a mount of an object-lock bucket, or another machine's share),
    writes all tenants' latest checkpoints there; run it from cron:

    
      */5 * * * * auditlake checkpoint export --to /mnt/worm/auditlake
      auditlake verify --since-checkpoint /mnt/worm/auditlake/<lake>/<tenant>/<size>.txt
    """
    from lake.proofs import latest_checkpoint

    lake = ctx.open()
    if dest is None:
        if tenant is None:
            fail("give --tenant T (prints it), or --to DIR (writes every tenant's)")
        assert tenant is not None
        ctx.who().require(Permission.READ_CHECKPOINTS, check_tenant(tenant))
        try:
            cp = latest_checkpoint(lake, tenant)
        except ProofError as exc:
            fail(str(exc))
        sys.stdout.write(cp["note"])
        return
    who = ctx.who()
    tenants = [check_tenant(tenant)] if tenant else lake.tenants()
    written = 0
    for t in tenants:
        if not who.may(Permission.READ_CHECKPOINTS, t):
            continue
        try:
            cp = latest_checkpoint(lake, t)
        except ProofError:
            continue  # nothing sealed yet
        path = Path(dest) / lake.name / t / f"{int(cp['tree_size'])}.txt"
        if path.exists():
            continue  # already exported: never overwrite what is kept outside
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(cp["note"])
        tmp.replace(path)
        written += 1
    note(f"{written} new checkpoint(s) exported under {dest}")


# -- collector ----------------------------------------------------------------------------


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8080,
    show_default=True,
    help="TCP port to listen on.",
)
@click.option(
    "--wal-dir",
    type=click.Path(file_okay=False),
    help="Write-ahead log directory (default: <config home>/wal/<lake name>).",
)
@click.option(
    "--batch-events",
    type=click.IntRange(1),
    default=50_000,
    show_default=True,
    help="Seal and commit a batch once this many events are pending.",
)
@click.option(
    "--batch-age",
    type=click.FloatRange(0.01),
    default=1.0,
    show_default=True,
    help="...or once the oldest pending event is this many seconds old.",
)
@click.option(
    "--max-body",
    type=click.IntRange(1024),
    default=8 * 1024 * 1024,
    show_default=True,
    help="Largest request body in bytes (413 beyond).",
)
@click.option(
    "--max-pending-events",
    type=click.IntRange(1),
    default=500_000,
    show_default=True,
    help="Events accepted but not yet in the lake before new requests get 503 + Retry-After.",
)
@click.option(
    "--body-timeout",
    type=click.FloatRange(0.1),
    default=10.0,
    show_default=True,
    help="Seconds a client may take to send its body (408 beyond: slow clients hold no slot).",
)
@click.option(
    "--max-connections",
    type=click.IntRange(1),
    default=1000,
    show_default=True,
    help="Open connections at most (kept below the open-file limit); at the limit the "
    "oldest connection that has not sent a request is closed.",
)
@click.option(
    "--header-timeout",
    type=click.FloatRange(0.1),
    default=10.0,
    show_default=True,
    help="Seconds a connection may take to send a request's headers before it is closed.",
)
@click.option(
    "--drain-timeout",
    type=click.FloatRange(0.0),
    default=30.0,
    show_default=True,
    help="On SIGTERM, seconds to keep trying to commit what is pending (the rest stays "
    "in the write-ahead log for the next start, and the exit code is 1).",
)
@click.option(
    "--forward-to-nats",
    metavar="URL",
    help="Publish accepted events to this NATS JetStream (202 once it has them) instead "
    "of the WAL and lake; `auditlake consume` appends them. No lake needed here.",
)
@click.option(
    "--forward-stream",
    default="AUDIT",
    show_default=True,
    help="JetStream stream to forward to (subjects: its name in lower case, .<tenant>).",
)
@pass_ctx
@handle_errors
def serve(
    ctx: Ctx,
    host: str,
    port: int,
    wal_dir: str | None,
    batch_events: int,
    batch_age: float,
    max_body: int,
    max_pending_events: int,
    body_timeout: float,
    max_connections: int,
    header_timeout: float,
    drain_timeout: float,
    forward_to_nats: str | None,
    forward_stream: str,
) -> None:
    """Run the HTTP collector: POST /v1/events, GET /v1/health, GET /metrics.

    Events are validated, written to a write-ahead log and fsync'd before the 202; a
    batcher seals them into the lake by size or age. SIGTERM stops accepting, commits
    everything pending and exits 0; if some could not be committed (within
    --drain-timeout) it says so and exits 1: they stay in the write-ahead log and are
    committed on the next start. Tokens come from `auditlake token create`.

    With --forward-to-nats the 202 means stored in JetStream instead (503 + Retry-After
    while it is unreachable); nothing is kept here, so collectors scale out freely.
    """
    ctx.require_operator("serve")
    from ingest.collector import CollectorConfig
    from ingest.collector_app import serve as run_server

    lake = None if forward_to_nats else ctx.open()  # forwarding: a stateless HTTP tier
    wal = Path(wal_dir) if wal_dir else ctx.home / "wal" / (lake.name if lake else "forward")
    pending = run_server(
        CollectorConfig(
            lake_path=lake.root if lake else ctx.lake_path,
            home=ctx.home,
            wal_dir=wal,
            batch_events=batch_events,
            batch_age_s=batch_age,
            max_body_bytes=max_body,
            max_pending_events=max_pending_events,
            body_timeout_s=body_timeout,
            validate_workers=os.cpu_count() or 1,
            forward_nats=forward_to_nats,
            forward_stream=forward_stream,
            max_connections=max_connections,
            header_timeout_s=header_timeout,
            drain_timeout_s=drain_timeout,
        ),
        host,
        port,
    )
    if pending:
        fail(
            f"stopped with {pending} acknowledged event(s) not yet in the lake; they are "
            f"kept in the write-ahead log {wal} and committed on the next start",
            ExitCode.FINDING,
        )


@cli.group()
def token() -> None:
    """Collector tokens, each bound to tenants (only a hash is stored)."""


@token.command("create")
@tenant_option(required=True, multiple=True)
@click.option("--name", help="A label for logs (never the secret).")
@pass_ctx
@handle_errors
def token_create(ctx: Ctx, tenant: tuple[str, ...], name: str | None) -> None:
    """Print a new token that may write events of these tenants; it is shown only once."""
    ctx.require_operator("token create")
    from ingest.tokens import TokenStore

    click.echo(TokenStore(ctx.home).create(list(tenant), name))


# -- demo ---------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--days",
    type=click.IntRange(1, 365),
    default=7,
    show_default=True,
    help="Days of traffic to generate, one signed batch a day.",
)
@click.option(
    "--events-per-day",
    type=click.IntRange(10, 1_000_000),
    default=400,
    show_default=True,
    help="Events per tenant per day.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),  # the generator rejects negative seeds
    default=7,
    show_default=True,
    help="Random seed: the same seed gives the same events and incidents.",
)
@click.option("--force", is_flag=True, help="Replace an existing demo lake at --lake.")
@pass_ctx
@handle_errors
def demo(ctx: Ctx, days: int, events_per_day: int, seed: int, force: bool) -> None:
    """Build a demo lake with realistic traffic and planted attacks, then verify it."""
    ctx.require_operator("demo")
    from auditlake.demo import run_demo

    run_demo(
        ctx.lake_path, ctx.home, days=days, events_per_day=events_per_day, seed=seed, force=force
    )


# The other command groups live in their own modules; importing them registers them on
# `cli`. They import this module, never each other.
from auditlake import accesscli as _accesscli  # noqa: E402
from auditlake import consumecli as _consumecli  # noqa: E402
from auditlake import dashcli as _dashcli  # noqa: E402
from auditlake import detectcli as _detectcli  # noqa: E402
from auditlake import querycli as _querycli  # noqa: E402
from auditlake import retentioncli as _retentioncli  # noqa: E402
from auditlake import tuicli as _tuicli  # noqa: E402
from auditlake import witnesscli as _witnesscli  # noqa: E402

del _accesscli, _consumecli, _querycli, _detectcli, _tuicli, _dashcli, _retentioncli, _witnesscli


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
