"""Reading a request body within a size limit and a deadline, for our HTTP servers.

The collector and the witness server refuse a body as early as they can: a declared
length over the limit before a byte of it, a body that grows past the limit as soon as
it does, a body that takes too long with 408. Each server words its own answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio
from starlette.requests import Request

__all__ = ["BodyRefused", "read_bounded"]


@dataclass(frozen=True)
class BodyRefused:
    """Why a body was not read: 400 (a Content-Length that is no number, when strict),
    413 (over the limit; `declared` when the header alone said so), 408 (too slow)."""

    status: int
    declared: int | None = None


async def read_bounded(
    request: Request, limit: int, timeout_s: float, *, strict_length: bool = False
) -> bytes | BodyRefused:
    """The body of `request`, or why it was refused (see `BodyRefused`)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if declared.isdigit() and int(declared) > limit:
            return BodyRefused(413, int(declared))
        if strict_length and not declared.isdigit():
            return BodyRefused(400)
    chunks: list[bytes] = []
    size = 0
    try:
        with anyio.fail_after(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    return BodyRefused(413)
                chunks.append(chunk)
    except TimeoutError:
        return BodyRefused(408)
    return b"".join(chunks)
