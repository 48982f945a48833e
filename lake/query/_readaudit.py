"""The read audit: who read what, recorded in the lake itself.

Every search, SQL query and proof is an `audit.query` event in the reserved tenant
(`READ_AUDIT_TENANT`), signed and sealed like any other event: who asked, through which
interface, what, over which tenants. A refused query is recorded too (outcome `failure`).

Two concerns beyond writing the events live here:

- On an encrypted lake the lake's own log stays in the clear (verifiers without the
  master key read it), so a recorded query must not carry the values that the lake keeps
  encrypted: a search for `ip:198.51.100.77` would otherwise put the address, in
  plaintext, into the read audit and its statistics, beyond the reach of `keys shred`.
  Values that may be such (ip, free text, every SQL string literal and number) are
  recorded as a keyed hash (`hmac:<hex>`, HMAC-SHA256 under a key derived from the
  master key): the same value gives the same token, so repeated searches still
  correlate, but the value cannot be read back nor guessed without the master key (and
  not at all once that key is replaced).
- A tenant's auditor sees the reads that touched the tenant (`scoped_audit_sql`), and
  of a read over several tenants only the part about theirs, without a grant on the
  reserved tenant (which shows every tenant's reads).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson

from lake.contract import EVENTS_SCHEMA, READ_AUDIT_TENANT, StorageError, UsageError, validate
from lake.log import NoteSigner
from lake.query._querystring import SearchFilter, parse_query
from lake.query._sandbox import sql_literal
from lake.secrets import Principal, encrypted, master_key
from lake.storage import Lake
from lake.write import append

# Interfaces whose recorded text holds only tenants, event ids or alert ids.
PLAIN_KINDS: Final = frozenset({"events", "prove", "evidence", "alerts"})
TOKEN_PREFIX: Final = "hmac:"
_KEY_LABEL: Final = b"auditlake read-audit values v1"
# What an auditor of some tenants sees instead of a read's text that covered others too.
WITHHELD: Final = "(withheld: the read covered tenants you do not audit)"
# A string literal ('…' with '' doubled, E'…' with backslash escapes, unterminated to the
# end), a dollar-quoted string, a comment, a double-quoted identifier, or a number.
_SQL_TOKEN: Final = re.compile(
    r"""(?P<e>(?<![\w$])[eE]'(?:[^'\\]|\\.|'')*(?:'|\Z))"""
    r"""|(?P<s>'(?:[^']|'')*(?:'|\Z))"""
    r"""|(?P<d>\$(?P<tag>[A-Za-z_]*)\$.*?(?:\$(?P=tag)\$|\Z))"""
    r"""|(?P<c>--[^\n]*|/\*.*?(?:\*/|\Z))"""
    r"""|(?P<q>"(?:[^"]|"")*(?:"|\Z))"""
    # A number (or an unquoted address, 198.51.100.77): details values are numbers too.
    r"""|(?P<n>(?<![\w$])\.?[0-9][\w.]*)""",
    re.DOTALL,
)
_S_BODY: Final = re.compile(r"'((?:[^']|'')*)'?", re.DOTALL)
_E_BODY: Final = re.compile(r"[eE]'((?:[^'\\]|\\.|'')*)'?", re.DOTALL)
_PLAIN_IDENTIFIER: Final = re.compile(r'"[A-Za-z_][A-Za-z0-9_]*"')


def _literal_value(m: re.Match[str]) -> str:
    """The value a matched string literal stands for (so `'x'`, `E'x'`, `$$x$$` and a
    search for x all give one token)."""
    whole = m.group(0)
    if m.group("d") is not None:
        tag = f"${m.group('tag')}$"
        inner = whole[len(tag) :]
        return inner[: -len(tag)] if inner.endswith(tag) and len(inner) >= len(tag) else inner
    if m.group("e") is not None:
        body = _E_BODY.fullmatch(whole)
        text = body.group(1) if body else whole
        return re.sub(r"\\(.)", r"\1", text, flags=re.DOTALL).replace("''", "'")
    body = _S_BODY.fullmatch(whole)
    return (body.group(1) if body else whole).replace("''", "'")


class Redactor:
    """Replaces values that an encrypted lake keeps encrypted by keyed-hash tokens."""

    def __init__(self, key: bytes) -> None:
        self._key = hmac.new(key, _KEY_LABEL, hashlib.sha256).digest()

    def token(self, value: str) -> str:
        digest = hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()
        return TOKEN_PREFIX + digest[:32]

    def sql(self, text: str) -> str:
        """SQL with every string literal, number and comment replaced by a token (quoted
        identifiers stay when they are plain names: a column, a view)."""

        def sub(m: re.Match[str]) -> str:
            whole = m.group(0)
            if m.group("q") is not None:
                return whole if _PLAIN_IDENTIFIER.fullmatch(whole) else f'"{self.token(whole)}"'
            if m.group("c") is not None:
                return "/* " + self.token(whole) + " */"
            if m.group("n") is not None:
                return self.token(whole)
            return "'" + self.token(_literal_value(m)) + "'"

        return _SQL_TOKEN.sub(sub, text)

    def search(self, text: str) -> str:
        """A search query string with ip values and free-text terms replaced by tokens."""
        try:
            filt = parse_query(text)
        except UsageError:
            return self.token(text) if text else text
        return SearchFilter(
            **{
                **{f: getattr(filt, f) for f in _KEPT_FIELDS},
                "ips": tuple(self.token(v) for v in filt.ips),
                "text": tuple(self.token(v) for v in filt.text),
                "exclude": tuple((k, self.token(v) if k == "ip" else v) for k, v in filt.exclude),
            }
        ).to_query_string()

    def record(self, kind: str, query: str, reason: str | None) -> tuple[str, str | None]:
        """The (query, reason) to record for a read of this kind."""
        if kind in PLAIN_KINDS:
            return query, reason
        if kind == "sql":
            return self.sql(query), self.sql(reason) if reason else reason
        return self.search(query), reason


_KEPT_FIELDS: Final = tuple(
    f for f in SearchFilter.__dataclass_fields__ if f not in ("ips", "text", "exclude")
)


def redactor_for(lake: Lake, home: Path | None = None) -> Redactor | None:
    """The lake's redactor when it is encrypted (None: record queries as typed)."""
    if not encrypted(lake):
        return None
    from lake.secrets import config_home

    return Redactor(master_key(home or config_home()))


@dataclass(frozen=True)
class ReadRecord:
    """One read as the read audit holds it: who, when, through which interface, what, over
    which tenants, and whether it was allowed. Written by `ReadAudit.record` (`details`)
    and read back by `read_records_sql` + `from_row`, so no reader spells a JSON path."""

    time: datetime
    principal: str
    interface: str
    query: str
    tenants: tuple[str, ...]
    outcome: str
    reason: str | None = None

    @staticmethod
    def details(
        interface: str, query: str, tenants: Sequence[str], reason: str | None
    ) -> dict[str, Any]:
        """The event's `details` for this read (query and reason cut to their limits)."""
        details: dict[str, Any] = {
            "interface": interface,
            "query": query[:8000],
            "tenants": list(tenants),
        }
        if reason:
            details["reason"] = reason[:2000]
        return details

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ReadRecord:
        """A record from a row of `read_records_sql`."""
        return cls(
            time=row["time"],
            principal=str(row["principal"]),
            interface=str(row["interface"] or ""),
            query=str(row["query"] or ""),
            tenants=tuple(str(t) for t in row["tenants"] or ()),
            outcome=str(row["outcome"]),
            reason=row["reason"],
        )


def read_records_sql(limit: int, *, hide: tuple[str, str] | None = None) -> str:
    """The newest `limit` reads of the `query_audit` view, with `ReadRecord`'s columns.

    `hide=(principal, interface)` leaves out that principal's reads through that interface
    (any of its kinds: `dashboard` hides `dashboard.search`, `dashboard.sql`, ...).
    """
    where = ""
    if hide is not None:
        principal, interface = hide
        kind = "split_part(coalesce(json_extract_string(details, '$.interface'), ''), '.', 1)"
        where = (
            f"WHERE NOT (actor_id = {sql_literal(principal)} "
            f"AND {kind} = {sql_literal(interface)}) "
        )
    return (
        "SELECT time, actor_id AS principal, "
        "json_extract_string(details, '$.interface') AS interface, "
        "json_extract_string(details, '$.query') AS query, "
        "CAST(json_extract(details, '$.tenants') AS VARCHAR[]) AS tenants, outcome, "
        "json_extract_string(details, '$.reason') AS reason "
        f"FROM query_audit {where}ORDER BY time DESC LIMIT {int(limit)}"
    )


class ReadAudit:
    """Writes `audit.query` events to the reserved tenant, signed and sealed.

    Synchronous by default: the record is committed before any row is returned. Long-lived
    interfaces (TUI, dashboard) may pass `buffered=True` and call `flush()` on a timer and
    at exit, trading a few seconds of delay for one commit per burst of queries.
    """

    def __init__(
        self,
        lake: Lake,
        signer: NoteSigner,
        *,
        source: str,
        buffered: bool = False,
        home: Path | None = None,
    ) -> None:
        self.lake = lake
        self.signer = signer
        self.source = source
        self.buffered = buffered
        self.home = home
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def record(
        self,
        principal: Principal,
        *,
        interface: str,
        query: str,
        tenants: Sequence[str],
        outcome: str = "success",
        reason: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        # Loaded per record: a shred meanwhile rotates the master key, and later records
        # must not be linkable with a key that no longer exists.
        kind = interface.rpartition(".")[2]
        redactor = None if kind in PLAIN_KINDS else redactor_for(self.lake, self.home)
        if redactor is not None:  # (a proof needs no master key, so none is asked for)
            query, reason = redactor.record(kind, query, reason)
        details = ReadRecord.details(interface, query, tenants, reason)
        if extra:
            details.update(extra)
        event = {
            "tenant": READ_AUDIT_TENANT,
            "time": datetime.now(UTC).isoformat(),
            "category": "admin_action",
            "action": "audit.query",
            "outcome": outcome,
            "severity": "info" if outcome == "success" else "medium",
            "actor": {"id": principal.name, "type": "admin" if principal.operator else "user"},
            "target": {"type": "tenants", "id": ",".join(tenants)[:1000] or "(none)"},
            "source": self.source,
            "details": details,
        }
        with self._lock:
            self._pending.append(event)
        if not self.buffered:
            self.flush()

    def flush(self) -> int:
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return 0
        try:
            return self._write(pending)
        except BaseException:
            # Not written: back in front of the queue, so no read goes unaudited.
            with self._lock:
                self._pending = pending + self._pending
            raise

    def _write(self, pending: list[dict[str, Any]]) -> int:
        # A nonce keeps two identical queries in the same microsecond apart.
        namespace = hashlib.sha256(orjson.dumps(pending) + os.urandom(16)).digest()
        result = validate(pending, namespace=namespace, reserved_ok=True)
        if result.rejected:
            # Our own events: a rejection here is a bug, never silently dropped.
            raise StorageError(f"read-audit event rejected: {result.rejected[0].issues[0]}")
        # Fresh ids (a digest of these very events): no need to look for them in the lake.
        append(self.lake, result.table, self.signer, dedupe=False)
        return len(pending)


def scoped_audit_sql(source: str, tenants: Sequence[str]) -> str:
    """The read audit as an auditor of `tenants` sees it, from `source` (a SELECT of the
    reserved tenant's rows): the reads whose tenants include one of theirs, each showing
    only those of its tenants (in `details.tenants` and `target_id`).

    Of a read that covered other tenants too, the query text and refusal reason are
    withheld: `WHERE tenant = 'u' AND actor_id = '...'` over a principal's two tenants
    names the other tenant's data, which this auditor may not see.
    """
    mine = "[" + ", ".join("'" + t.replace("'", "''") + "'" for t in tenants) + "]"
    recorded = "CAST(json_extract(details, '$.tenants') AS VARCHAR[])"
    touched = f"list_sort(list_intersect({recorded}, {mine}))"
    cols = []
    for name in EVENTS_SCHEMA.names:
        if name == "details":
            cols.append(
                f"CAST(CASE WHEN len(list_distinct({recorded})) > len({touched}) "
                f"THEN json_merge_patch(details, json_object('tenants', {touched}, "
                f"'query', '{WITHHELD}', 'reason', NULL)) "
                f"ELSE json_merge_patch(details, json_object('tenants', {touched})) END "
                'AS VARCHAR) AS "details"'
            )
        elif name == "target_id":
            cols.append(f"array_to_string({touched}, ',') AS \"target_id\"")
        else:
            cols.append(f'"{name}"')
    return f"SELECT {', '.join(cols)} FROM ({source}) WHERE len({touched}) > 0"
