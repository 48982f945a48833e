"""`auditlake witness …`: run a witness, or configure the witnesses a lake asks.

Registered on the `cli` group by auditlake.cli.
"""

from __future__ import annotations

from pathlib import Path

import click

from auditlake.cli.context import Ctx, handle_errors, pass_ctx
from auditlake.cli.options import format_option, listen_options
from auditlake.cli.output import emit_json, emit_table, fail, note
from lake.secrets import parse_verifier_keys


@click.group()
def witness() -> None:
    """Outside witnesses that cosign each tenant's checkpoints (C2SP tlog-witness).

    \b
    The witness's side (someone else, on another machine, with its own key):
      auditlake witness keygen --name witness.example/w1 --out w1.key
      auditlake witness serve --name witness.example/w1 --key-file w1.key \\
          --state ./w1-state --log-key "$(auditlake keys export)" --port 8090
    The log's side:
      auditlake witness add http://witness.example:8090 --key 'witness.example/w1+…+…'
      auditlake witness ask                 ask now (ingest and seal ask by themselves)
      auditlake verify --witness-key 'witness.example/w1+…' --min-witnesses 1

    A witness cosigns a checkpoint only if it extends the last one it saw (consistency
    proof), so a forked or rolled-back log gets no cosignature, and verify says so.
    """


@witness.command("keygen")
@click.option("--name", required=True, help="Witness name, a schema-less URL (e.g. w.example/w1).")
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False), help="Private key file (0600)."
)
def witness_keygen(name: str, out: str) -> None:
    """Create a witness key; prints its public cosigner key (give it to log verifiers)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from lake.secrets import write_private_key
    from lake.witness import Cosigner

    path = Path(out)
    if path.exists():
        fail(f"{out} exists; refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    write_private_key(path, key)
    click.echo(Cosigner(name, key).key.encode())


@witness.command("serve")
@click.option("--name", required=True, help="Witness name (as at keygen).")
@click.option("--key-file", required=True, type=click.Path(dir_okay=False), help="Its private key.")
@click.option("--state", required=True, type=click.Path(file_okay=False), help="State directory.")
@click.option("--log-key", multiple=True, required=True, help="Verifier key of a log to witness.")
@listen_options(8090, "Port.")
@handle_errors
def witness_serve(
    name: str, key_file: str, state: str, log_key: tuple[str, ...], host: str, port: int
) -> None:
    """Run a witness: POST /add-checkpoint (C2SP tlog-witness)."""
    from ingest.witness_server import build, serve

    w = build(Path(state), name, Path(key_file), parse_verifier_keys(list(log_key), "--log-key"))
    note(f"witness {name} on http://{host}:{port}  key {w.cosigner.key.encode()}")
    serve(w, host, port)


@witness.command("add")
@click.argument("url")
@click.option("--key", required=True, help="The witness's cosigner key (name+hash+base64).")
@pass_ctx
@handle_errors
def witness_add(ctx: Ctx, url: str, key: str) -> None:
    """Ask this witness after every seal (kept in the config home)."""
    from lake.witness import CosignerKey, WitnessConfig, load_witnesses, save_witnesses

    ctx.require_operator("witness add")
    if not url.startswith(("http://", "https://")):
        fail("the witness URL must be http:// or https://")
    new = WitnessConfig(url, CosignerKey.parse(key))
    current = [w for w in load_witnesses(ctx.home) if w.name != new.name]
    save_witnesses(ctx.home, [*current, new])
    note(f"witness {new.name} at {url} will be asked after each seal")


@witness.command("list")
@pass_ctx
@handle_errors
def witness_list(ctx: Ctx) -> None:
    """The witnesses this lake asks."""
    from lake.witness import load_witnesses

    emit_table(
        None,
        ["name", "url", "key"],
        [[w.name, w.url, w.key.encode()] for w in load_witnesses(ctx.home)],
    )


@witness.command("ask")
@click.option("--tenant", multiple=True, help="Only these tenants.")
@format_option("table", "json")
@pass_ctx
@handle_errors
def witness_ask(ctx: Ctx, tenant: tuple[str, ...], fmt: str) -> None:
    """Ask every configured witness to cosign each tenant's latest checkpoint now."""
    from lake.witness import load_witnesses, request_cosignatures

    ctx.require_operator("witness ask")
    lake = ctx.open()
    witnesses = load_witnesses(ctx.home)
    if not witnesses:
        fail("no witnesses configured: `auditlake witness add URL --key KEY`")
    results = [
        r
        for t in (list(tenant) or lake.tenants())
        for r in request_cosignatures(lake, t, witnesses)
    ]
    rows = [r.__dict__ for r in results]
    if fmt == "json":
        emit_json(rows)
    else:
        emit_table(None, ["tenant", "witness", "size", "result"],
                   [[r.tenant, r.witness, r.size, r.message] for r in results])  # fmt: skip
    if any(not r.ok for r in results):
        raise SystemExit(1)
