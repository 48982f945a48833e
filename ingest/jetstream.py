"""NATS JetStream in front of the lake: the connection, and the consumer's source.

Layout on the broker, all derived from the stream name (default `AUDIT`):

* stream `AUDIT`, subjects `audit.<tenant>` (the name in lower case), work-queue retention,
  file storage: a message stays until a consumer acknowledges it, and then goes;
* stream `AUDIT_REJECTED`, subjects `audit_rejected.<tenant>`: rejected messages as they
  came, with the reasons in headers (`Auditlake-Errors`: JSON `index`/`field`/`message`);
* key-value bucket `auditlake-leases-AUDIT`, whose keys live for the lease TTL unless
  renewed: `lease.<tenant>` (one sequencer per tenant) and `member.<id>` (live consumers).

Each consumer takes leases of tenants with a backlog, up to its fair share (backlog
tenants / live consumers; a tenant nobody takes for a while goes to anyone). Holding a
lease, it makes a durable pull consumer of its own for the tenant's subject, named after
the lease revision, after deleting any left by the tenant's previous holder: delivery
then starts at the tenant's oldest unacknowledged message, in order, and a stale holder
can neither fetch nor acknowledge through the new one. The position a commit records is
the JetStream stream sequence; the source's name carries the stream's creation time, so a
stream deleted and made again starts a new position space instead of being skipped.

nats-py is asyncio; the lake is not. Each connection runs its own event loop on a thread,
and the public methods here are synchronous.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import math
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from ingest.broker import DEFAULT_STREAM, BrokerError, Message, Rejection, micros
from ingest.jsonlog import log
from lake.contract import Issue, UsageError, is_valid_tenant

try:
    import nats
    import nats.errors
    import nats.js.errors
    from nats.js.api import (
        AckPolicy,
        ConsumerConfig,
        DeliverPolicy,
        KeyValueConfig,
        RetentionPolicy,
        StorageType,
        StreamConfig,
    )
except ImportError:  # the `scale` extra
    raise BrokerError(
        "NATS JetStream support needs nats-py: pip install 'auditlake[scale]'"
    ) from None

T = TypeVar("T")
DEFAULT_URL = "nats://127.0.0.1:4222"
STREAM_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
CONSUMER_PREFIX = "auditlake_"
NOT_UNIQUE = 10100  # JetStream: "filtered consumer not unique on workqueue stream"
REQUEST_TIMEOUT_S = 5.0
ACK_WAIT_S = 30.0  # a batch in hand longer than this is delivered again (then skipped)
ROUND_BYTES = 16 << 20  # asked for in one fetch round: the broker drops a client that lags
# by 64 MiB (its max_pending), and whatever was in flight with it
IDLE_RELEASE_S = 10.0  # a held tenant without backlog for this long is given back
INACTIVE_CONSUMER_S = 24 * 3600.0  # the broker removes consumers left by crashed holders


def check_stream(name: str) -> str:
    """A stream name usable for the stream, its subjects and its lease bucket."""
    if not re.fullmatch(STREAM_PATTERN, name):
        raise UsageError(
            f"invalid stream name {name!r}: letters, digits, '_' and '-', at most 32 characters"
        )
    return name


def redact(url: str) -> str:
    """The URL without credentials, for logs and messages."""
    return re.sub(r"//[^@/]*@", "//***@", url)


class _Io:
    """An asyncio loop on a daemon thread; synchronous callers submit coroutines to it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="nats-io", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = REQUEST_TIMEOUT_S * 3) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise BrokerError(f"the broker did not answer within {timeout:g} s") from None
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            raise BrokerError(_describe(exc)) from None

    def spawn(self, coro: Coroutine[Any, Any, None]) -> concurrent.futures.Future[None]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def _describe(exc: BaseException) -> str:
    description = getattr(exc, "description", None)  # not set by every subclass
    if isinstance(exc, nats.js.errors.APIError) and description:
        return f"JetStream refused: {description}"
    if isinstance(exc, nats.errors.NoRespondersError | nats.js.errors.NoStreamResponseError):
        return "JetStream does not answer (is the server started with -js?)"
    if isinstance(exc, TimeoutError):
        return "the broker did not answer in time"
    return str(exc) or type(exc).__name__


class Connection:
    """One NATS connection with its own loop thread; creates the streams when missing.

    Raises BrokerError (with the URL's credentials left out) when the broker cannot be
    reached or its stream is set up in a way auditlake cannot use.
    """

    def __init__(
        self,
        url: str,
        stream: str,
        *,
        on_change: Callable[[str | None], None] | None = None,
    ) -> None:
        self.url = url
        self.stream = check_stream(stream)
        self.prefix = stream.lower()
        self.on_change = on_change or (lambda problem: None)
        self.io = _Io()
        try:
            self.created = self.io.run(self._open(), timeout=30)
        except BrokerError as exc:
            self.close()
            raise BrokerError(f"cannot use NATS at {redact(url)}: {exc}") from None

    async def _open(self) -> datetime:
        async def error(exc: Exception) -> None:
            return None  # reported through disconnected/reconnected instead, once per outage

        async def disconnected() -> None:
            if self.nc.is_closed:
                return
            log(event="broker_disconnected", url=redact(self.url))
            self.on_change("the JetStream broker is unreachable; retry later")

        async def reconnected() -> None:
            log(event="broker_reconnected", url=redact(self.url))
            self.on_change(None)

        # Fail fast on the first connection; once connected, reconnect for ever.
        self.nc = await nats.connect(
            self.url,
            name=f"auditlake-{os.getpid()}",
            connect_timeout=2,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.2,
            error_cb=error,
            disconnected_cb=disconnected,
            reconnected_cb=reconnected,
        )
        self.nc.options["max_reconnect_attempts"] = -1
        self.nc.options["reconnect_time_wait"] = 0.5
        self.js = self.nc.jetstream(timeout=REQUEST_TIMEOUT_S)
        info = await self._ensure(
            self.stream, f"{self.prefix}.>", RetentionPolicy.WORK_QUEUE, "auditlake events"
        )
        await self._ensure(
            f"{self.stream}_REJECTED",
            f"{self.prefix}_rejected.>",
            RetentionPolicy.LIMITS,
            "auditlake: messages `auditlake consume` rejected, with the reasons in headers",
        )
        created: datetime = info.created
        return created

    async def _ensure(
        self, name: str, subjects: str, retention: RetentionPolicy, description: str
    ) -> Any:
        try:
            info = await self.js.stream_info(name)
        except nats.js.errors.NotFoundError:
            return await self.js.add_stream(
                StreamConfig(
                    name=name,
                    description=description,
                    subjects=[subjects],
                    retention=retention,
                    storage=StorageType.FILE,
                )
            )
        now = info.config.retention  # a plain string in nats-py's answers
        if now != retention or subjects not in (info.config.subjects or []):
            raise BrokerError(
                f"stream {name} exists with retention {getattr(now, 'value', now)} and "
                f"subjects {info.config.subjects}; auditlake needs {retention.value} on {subjects}"
            )
        return info

    def close(self) -> None:
        if hasattr(self, "nc"):
            with contextlib.suppress(BrokerError):  # a broker that is gone: nothing to close
                self.io.run(self.nc.close(), timeout=10)
        self.io.stop()


# -- the consumer's source ---------------------------------------------------------------


@dataclass
class _Claim:
    """A tenant whose lease this consumer holds."""

    tenant: str
    key: str  # lease key
    rev: int  # last revision written
    consumer: str
    sub: Any  # the pull subscription
    renewed: float  # monotonic time the last successful renewal was *sent*
    lost: bool = False
    idle_since: float | None = None
    delivered: int = 0  # the consumer's delivery sequence of the last message we got
    message_bytes: float = 256 * 1024.0  # running mean message size (to size fetches)


def _token(tenant: str) -> str:
    """A tenant as a KV key token and consumer-name part (a hash for names that are not
    valid tenants, whose messages are taken only to be rejected)."""
    if is_valid_tenant(tenant):
        return tenant
    return "_" + hashlib.sha256(tenant.encode()).hexdigest()[:16]


class JetStreamSource:
    """`ingest.broker.Source` on a JetStream work-queue stream, with leases in a KV bucket.

    Args:
        url: the NATS server (credentials in the URL are never logged).
        stream: the stream; subjects are `<stream in lower case>.<tenant>`.
        lease_ttl_s: how long a lease outlives its holder; a bucket made earlier keeps
            its own TTL. Takeover after a crash waits this long.
    """

    def __init__(
        self, url: str = DEFAULT_URL, stream: str = DEFAULT_STREAM, *, lease_ttl_s: float = 10.0
    ) -> None:
        self._claims: dict[str, _Claim] = {}  # before connecting: _on_change reads it
        self.conn = Connection(url, stream, on_change=self._on_change)
        self._name = f"jetstream/{stream}@{micros(self.conn.created)}"
        host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:40]
        self.member = f"{host}-{os.getpid()}-{secrets.token_hex(3)}"
        self._waiting: dict[str, float] = {}  # backlog tenants we did not take, since when
        try:
            self.ttl = self.conn.io.run(self._open(lease_ttl_s))
        except BrokerError:
            self.conn.close()
            raise
        self._beating = self.conn.io.spawn(self._heartbeat())
        log(event="member", member=self.member, stream=stream, lease_ttl_s=self.ttl)

    @property
    def name(self) -> str:
        return self._name

    def _on_change(self, problem: str | None) -> None:
        if problem is None:
            # Reconnected: deliveries in flight at the break are lost to us, so every tenant
            # starts over from its oldest unacknowledged message (the messages in hand are
            # left to that, not committed).
            for claim in self._claims.values():
                claim.lost = True

    async def _open(self, ttl: float) -> float:
        bucket = f"auditlake-leases-{self.conn.stream}"
        try:
            self.kv = await self.conn.js.key_value(bucket)
        except nats.js.errors.BucketNotFoundError:
            config = KeyValueConfig(bucket=bucket, ttl=ttl, history=1, storage=StorageType.FILE)
            try:
                self.kv = await self.conn.js.create_key_value(config)
            except nats.js.errors.BadRequestError:  # another consumer made it first
                self.kv = await self.conn.js.key_value(bucket)
        self._bucket, self._bucket_stream = bucket, f"KV_{bucket}"
        await self.kv.put(f"member.{self.member}", b"")
        status = await self.kv.status()
        return float(status.ttl or ttl)

    # -- leases -------------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 4)
            with contextlib.suppress(TimeoutError, nats.errors.Error):
                await self.kv.put(f"member.{self.member}", b"")  # broker away: leases age
            for claim in list(self._claims.values()):
                await self._renew(claim)

    async def _renew(self, claim: _Claim) -> None:
        if claim.lost:
            return
        sent = time.monotonic()
        try:
            claim.rev = await self.kv.update(claim.key, self.member.encode(), last=claim.rev)
            claim.renewed = sent
        except nats.js.errors.KeyWrongLastSequenceError:
            claim.lost = True
            log(event="lease_taken", tenant=claim.tenant)
        except (TimeoutError, nats.errors.Error):
            pass

    def holds(self, tenant: str) -> bool:
        claim = self._claims.get(tenant)
        # Renewals go out every TTL/4: a lease not renewed for 3/4 of the TTL may be
        # expiring on the broker, whose clock started after we sent the renewal.
        return (
            claim is not None
            and not claim.lost
            and time.monotonic() - claim.renewed < self.ttl * 0.75
        )

    async def _acquire(self, tenant: str) -> bool:
        key = f"lease.{_token(tenant)}"
        sent = time.monotonic()
        try:
            rev = await self.kv.create(key, self.member.encode())
        except (nats.js.errors.KeyWrongLastSequenceError, nats.js.errors.KeyNotFoundError):
            # Held by another; or (not found) it expired while nats-py looked at why not.
            return False
        name = f"{CONSUMER_PREFIX}{_token(tenant)}_{rev}"
        try:
            await self._fresh_consumer(f"{self.conn.prefix}.{tenant}", name)
            sub = await self.conn.js.pull_subscribe_bind(name, stream=self.conn.stream)
        except BaseException:
            with contextlib.suppress(TimeoutError, nats.errors.Error):
                await self.kv.delete(key, last=rev)
            raise
        self._claims[tenant] = _Claim(tenant, key, rev, name, sub, sent)
        log(event="claimed", tenant=tenant, consumer=name)
        return True

    async def _fresh_consumer(self, subject: str, name: str) -> None:
        """A pull consumer of `subject` from its oldest message, replacing a stale one."""
        config = ConsumerConfig(
            durable_name=name,
            filter_subject=subject,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ACK_WAIT_S,
            max_deliver=-1,
            max_ack_pending=100_000,
            inactive_threshold=INACTIVE_CONSUMER_S,
        )
        try:
            await self.conn.js.add_consumer(self.conn.stream, config)
            return
        except nats.js.errors.BadRequestError as exc:
            if exc.err_code != NOT_UNIQUE:
                raise
        # A work-queue stream allows one consumer per subject: the previous holder's.
        offset = 0
        while True:
            page = await self.conn.js.consumers_info(self.conn.stream, offset)
            for info in page:
                if info.config.filter_subject != subject:
                    continue
                if not info.name.startswith(CONSUMER_PREFIX):
                    raise BrokerError(
                        f"consumer {info.name} of stream {self.conn.stream} also reads "
                        f"{subject}; a work-queue stream allows only one"
                    )
                await self.conn.js.delete_consumer(self.conn.stream, info.name)
            if len(page) < 256:
                break
            offset += len(page)
        await self.conn.js.add_consumer(self.conn.stream, config)

    async def _release(self, claim: _Claim) -> None:
        self._claims.pop(claim.tenant, None)
        claim.lost = True
        steps: list[Callable[[], Awaitable[Any]]] = [
            claim.sub.unsubscribe,
            lambda: self.conn.js.delete_consumer(self.conn.stream, claim.consumer),
            lambda: self.kv.delete(claim.key, last=claim.rev),
        ]
        for step in steps:
            # Gone already, or the broker is away: the lease then expires on its own.
            with contextlib.suppress(TimeoutError, nats.errors.Error):
                await step()
        log(event="released", tenant=claim.tenant)

    def release(self, tenant: str) -> None:
        claim = self._claims.get(tenant)
        if claim is not None:
            claim.lost = True  # at once: whatever happens to the broker calls below
            with contextlib.suppress(BrokerError):  # the lease then expires on its own
                self.conn.io.run(self._release(claim))

    async def _backlog(self, tenants: frozenset[str] | None) -> dict[str, int]:
        info = await self.conn.js.stream_info(
            self.conn.stream, subjects_filter=f"{self.conn.prefix}.>"
        )
        cut = len(self.conn.prefix) + 1
        return {
            subject[cut:]: n
            for subject, n in (info.state.subjects or {}).items()
            if n and (tenants is None or subject[cut:] in tenants)
        }

    async def _members(self) -> int:
        info = await self.conn.js.stream_info(
            self._bucket_stream, subjects_filter=f"$KV.{self._bucket}.member.*"
        )
        return max(1, sum(1 for n in (info.state.subjects or {}).values() if n))

    def _rank(self, tenant: str) -> bytes:
        # Each member prefers a different order of tenants, so members starting together
        # do not all race for the same ones.
        return hashlib.sha256(f"{self.member}/{tenant}".encode()).digest()

    async def _rebalance(self, tenants: frozenset[str] | None) -> tuple[set[str], set[str]]:
        now = time.monotonic()
        backlog = await self._backlog(tenants)
        gained: set[str] = set()
        lost: set[str] = set()
        for claim in list(self._claims.values()):
            if claim.tenant in backlog:
                claim.idle_since = None
            elif claim.idle_since is None:
                claim.idle_since = now
            if claim.lost or (claim.idle_since and now - claim.idle_since >= IDLE_RELEASE_S):
                await self._release(claim)
                lost.add(claim.tenant)
        members = await self._members()
        share = math.ceil(len(backlog.keys() | self._claims.keys()) / members)
        surplus = sorted(self._claims, key=self._rank, reverse=True)[: len(self._claims) - share]
        for tenant in surplus:  # a consumer joined: hand it our least preferred tenants
            await self._release(self._claims[tenant])
            lost.add(tenant)
        for tenant in list(self._waiting):
            if tenant not in backlog or tenant in self._claims:
                del self._waiting[tenant]
        for tenant in sorted(backlog.keys() - self._claims.keys(), key=self._rank):
            since = self._waiting.setdefault(tenant, now)
            # Beyond our share only a tenant nobody took for a while (e.g. one outside
            # the --tenant filters of the others).
            if len(self._claims) >= share and now - since < 3 * self.ttl:
                continue
            if await self._acquire(tenant):
                gained.add(tenant)
                self._waiting.pop(tenant, None)
        return gained, lost

    def rebalance(self, tenants: frozenset[str] | None) -> tuple[set[str], set[str]]:
        return self.conn.io.run(self._rebalance(tenants), timeout=60)

    # -- messages -----------------------------------------------------------------------

    async def _fetch(self, max_messages: int, wait_s: float) -> list[Message]:
        live = [c for c in self._claims.values() if not c.lost]
        if not live:
            await asyncio.sleep(wait_s)
            return []
        share = max_messages // len(live)
        batches = await asyncio.gather(
            *(self._fetch_claim(c, share, ROUND_BYTES // len(live), wait_s) for c in live)
        )
        return [m for batch in batches for m in batch]

    async def _fetch_claim(
        self, claim: _Claim, most: int, budget: int, wait_s: float
    ) -> list[Message]:
        n = max(1, min(most, int(budget / claim.message_bytes)))
        try:
            got = await claim.sub.fetch(n, timeout=wait_s)
        except TimeoutError:
            return []
        except nats.js.errors.APIError as exc:
            if exc.code in (404, 409):  # our consumer is gone: the tenant is not ours
                claim.lost = True
            return []
        except nats.errors.Error:
            return []  # disconnected: try again after the reconnect
        out = []
        for msg in got:
            meta = msg.metadata
            if meta.sequence.consumer != claim.delivered + 1:
                # A delivery never reached us (a reconnect loses what was in flight). Its
                # successors must not be committed before it: start the tenant over, from
                # its oldest unacknowledged message.
                log(event="delivery_gap", tenant=claim.tenant,
                    expected=claim.delivered + 1, got=meta.sequence.consumer)  # fmt: skip
                claim.lost = True
                return []
            claim.delivered = meta.sequence.consumer
            claim.message_bytes = 0.9 * claim.message_bytes + 0.1 * max(len(msg.data), 64)
            out.append(
                Message(
                    subject=msg.subject,
                    tenant=claim.tenant,
                    position=meta.sequence.stream,
                    data=msg.data,
                    headers=dict(msg.headers or {}),
                    stored_at=meta.timestamp,
                    handle=msg,
                )
            )
        return out

    def fetch(self, max_messages: int, wait_s: float) -> list[Message]:
        try:
            return self.conn.io.run(self._fetch(max_messages, wait_s), timeout=wait_s + 30)
        except BrokerError:
            # What the abandoned fetch received is lost to us: no tenant may go on from here.
            for claim in self._claims.values():
                claim.lost = True
            raise

    async def _ack(self, messages: Sequence[Message]) -> None:
        for m in messages:
            await self.conn.nc.publish(m.handle.reply, b"+ACK")
        await self.conn.nc.flush(timeout=int(REQUEST_TIMEOUT_S))

    def ack(self, messages: Sequence[Message]) -> None:
        self.conn.io.run(self._ack(messages))

    async def _reject(self, m: Message, issues: Sequence[Issue]) -> None:
        rejection = Rejection.of(m, issues)
        # Re-rejecting after a crash publishes the same id: JetStream keeps one.
        headers = {"Nats-Msg-Id": f"{self._name}/{m.position}", **rejection.headers()}
        if "Content-Type" in m.headers:
            headers["Content-Type"] = m.headers["Content-Type"]
        subject = f"{self.conn.prefix}_rejected.{m.tenant}"
        try:
            await self.conn.js.publish(subject, m.data, headers=headers)
        except nats.errors.MaxPayloadError:
            # The message and the reasons together exceed the broker's limit: keep the reasons.
            dropped = replace(rejection, payload_dropped=len(m.data))
            headers.update(dropped.headers())
            await self.conn.js.publish(subject, b"", headers=headers)

    def reject(self, message: Message, issues: Sequence[Issue]) -> None:
        self.conn.io.run(self._reject(message, issues))

    def drained(self, tenants: frozenset[str] | None) -> bool:
        return not self.conn.io.run(self._backlog(tenants))

    def close(self) -> None:
        self._beating.cancel()

        async def release_all() -> None:
            for claim in list(self._claims.values()):
                await self._release(claim)
            # Purged, not deleted: a delete marker would still count as a member.
            await self.conn.js.purge_stream(
                self._bucket_stream, subject=f"$KV.{self._bucket}.member.{self.member}"
            )

        try:
            self.conn.io.run(release_all(), timeout=30)
        except BrokerError as exc:
            log(event="release_failed", error=str(exc))  # the leases expire on their own
        self.conn.close()
