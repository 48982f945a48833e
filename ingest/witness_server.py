"""`auditlake witness serve`: the tlog-witness HTTP endpoint around `lake.witness.Witness`.

Run by a second party (another team, an auditor, a partner) with its own key, so that a
log operator who forks or rolls back a tenant's log cannot obtain a cosignature for it.

A request body is read only up to MAX_BODY (a checkpoint is a few hundred bytes): a
declared Content-Length beyond it is answered 413 before any of the body is read, and a
body without one (chunked) is read chunk by chunk and answered 413 as soon as it passes
the limit; either way the connection is closed rather than drained. A body must arrive
within BODY_TIMEOUT_S (408 beyond).

A witness answers anyone who can reach it, so it keeps the collector's connection limits
(ingest/connections.py): a cap below the descriptor limit, a header deadline, and one
log line a while when `accept` runs out of descriptors. Without them a few hundred
half-open connections made it stop answering and write megabytes of tracebacks a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ingest.bounded_body import BodyRefused, read_bounded
from ingest.connections import (
    BODY_TIMEOUT_S,
    HEADER_TIMEOUT_S,
    MAX_CONNECTIONS,
    ConnectionGuard,
    RateLimitedLog,
    descriptor_budget,
    server_options,
)
from ingest.jsonlog import log
from lake.contract import UsageError
from lake.log import VerifierKey
from lake.secrets import read_private_key
from lake.witness import MAX_BODY, Cosigner, Witness, WitnessError


def load_cosigner(name: str, key_file: Path) -> Cosigner:
    """The witness's private key from a PEM file that only its owner may read."""
    if not key_file.is_file():
        raise UsageError(
            f"no witness key at {key_file}; create one with `auditlake witness keygen`"
        )
    key = read_private_key(key_file, "witness key")
    return Cosigner(name, key)


def _refuse(status: int, text: str) -> Response:
    # Connection: close: the server stops reading the rest of the body and hangs up.
    return PlainTextResponse(text, status_code=status, headers={"Connection": "close"})


_REFUSALS = {
    400: "bad Content-Length\n",
    413: "request too large\n",
    408: "body not received in time\n",
}


async def _bounded_body(request: Request) -> bytes | Response:
    """The body, or a 413/400/408 response once it is (or is declared) larger than MAX_BODY."""
    body = await read_bounded(request, MAX_BODY, BODY_TIMEOUT_S, strict_length=True)
    if isinstance(body, BodyRefused):
        return _refuse(body.status, _REFUSALS[body.status])
    return body


def make_app(witness: Witness, guard: ConnectionGuard | None = None) -> Starlette:
    """The witness's ASGI app; `guard`, when given, handles out-of-descriptor errors."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if guard is not None:
            asyncio.get_running_loop().set_exception_handler(guard.exception_handler)
        yield

    async def add_checkpoint(request: Request) -> Response:
        body = await _bounded_body(request)
        if isinstance(body, Response):
            return body
        try:
            line = witness.add_checkpoint(body)
        except WitnessError as exc:
            media = "text/x.tlog.size" if exc.status == 409 else "text/plain"
            return PlainTextResponse(exc.body, status_code=exc.status, media_type=media)
        return PlainTextResponse(line, media_type="text/x.tlog.signature")

    async def health(request: Request) -> Response:
        return PlainTextResponse(f"{witness.cosigner.key.encode()}\n")

    return Starlette(
        routes=[
            Route("/add-checkpoint", add_checkpoint, methods=["POST"]),
            Route("/", health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def serve(witness: Witness, host: str, port: int) -> None:
    import uvicorn  # brings click: kept out of `import ingest` (tests/test_layers.py)

    limit = descriptor_budget(MAX_CONNECTIONS)
    guard = ConnectionGuard(limit, HEADER_TIMEOUT_S, RateLimitedLog(log), lambda _name: None)
    uvicorn.run(
        make_app(witness, guard),
        host=host,
        port=port,
        **server_options(guard),
    )


def build(state: Path, name: str, key_file: Path, log_keys: list[VerifierKey]) -> Witness:
    if not log_keys:
        raise UsageError("give at least one --log-key: the verifier key of a log to witness")
    return Witness(state, load_cosigner(name, key_file), log_keys)
