"""The log's side of witnessing: which witnesses to ask (a 0600 file in the config home),
asking each to cosign a tenant's latest checkpoint, and keeping what they return."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from lake.contract import UsageError
from lake.log import parse_note
from lake.secrets import read_private_json, write_private_json
from lake.storage import paths
from lake.witness._store import CosignatureStore
from lake.witness._witness import CosignerKey, encode_request

WITNESS_CONFIG: Final = "witnesses.json"
COSIGNATURES: Final = paths.COSIGNATURES_DIR


@dataclass(frozen=True)
class WitnessConfig:
    """A witness the log asks after each seal: its name, URL and cosigner key."""

    url: str
    key: CosignerKey

    @property
    def name(self) -> str:
        return self.key.name


def load_witnesses(home: Path) -> list[WitnessConfig]:
    """The witnesses the log asks, from `<home>/witnesses.json` (none when it is not there)."""
    return read_private_json(home / WITNESS_CONFIG, "witness list", _witnesses, UsageError) or []


def _witnesses(doc: Any) -> list[WitnessConfig]:
    return [WitnessConfig(str(w["url"]), CosignerKey.parse(str(w["key"]))) for w in doc]


def save_witnesses(home: Path, witnesses: Sequence[WitnessConfig]) -> None:
    write_private_json(
        home / WITNESS_CONFIG, [{"url": w.url, "key": w.key.encode()} for w in witnesses]
    )


def _post(url: str, body: bytes, timeout: float) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(
        url.rstrip("/") + "/add-checkpoint", data=body, method="POST",
        headers={"Content-Type": "text/plain"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode("utf-8", "replace")


@dataclass
class WitnessResult:
    witness: str
    tenant: str
    size: int
    ok: bool
    message: str


def request_cosignatures(
    lake: Any, tenant: str, witnesses: Sequence[WitnessConfig], *, timeout: float = 5.0
) -> list[WitnessResult]:
    """Ask each witness to cosign the tenant's latest checkpoint; keep what they return.

    A witness that is down or refuses does not stop ingestion: the result says so, and
    `verify --min-witnesses` reports checkpoints left without enough cosignatures.
    """
    from lake.proofs import latest_checkpoint, prove_consistency

    cp = latest_checkpoint(lake, tenant)
    size, note = int(cp["tree_size"]), str(cp["note"])
    body_text, _ = parse_note(note)
    stored = CosignatureStore.load(lake, tenant)
    out = []
    for w in witnesses:
        if not w.url.startswith(("http://", "https://")):
            out.append(WitnessResult(w.name, tenant, size, False, "only http(s) witness URLs"))
            continue
        held = stored.sizes.get(size)
        if held is not None and w.name in held.lines:
            if held.body == body_text:
                out.append(WitnessResult(w.name, tenant, size, True, "already cosigned"))
            else:
                out.append(
                    WitnessResult(
                        w.name, tenant, size, False,
                        "the witness cosigned another tree head of this size: the log forked",
                    )
                )  # fmt: skip
            continue
        old = stored.last_cosigned(w.name, size)
        message = ""
        for _attempt in range(2):
            proof: list[bytes] = []
            if 0 < old < size:
                proof = [
                    bytes.fromhex(h)
                    for h in prove_consistency(lake, tenant, old)["consistency_path"]
                ]
            try:
                status, text = _post(w.url, encode_request(old, proof, note), timeout)
            except OSError as exc:
                message = f"unreachable: {exc}"
                break
            if status == 409 and text.strip().isdigit() and int(text.strip()) != old:
                old = int(text.strip())  # the witness knows another size: prove from there
                if old > size:
                    message = f"the witness has seen size {old}, more than the lake's {size}"
                    break
                continue
            if status == 200 and w.key.verify(body_text, text.strip()) is not None:
                stored.add(size, body_text, w.name, text.strip())
                stored.save(lake)
                out.append(WitnessResult(w.name, tenant, size, True, "cosigned"))
                message = ""
                break
            message = f"HTTP {status}: {text.strip()[:200]}"
            break
        if message:
            out.append(WitnessResult(w.name, tenant, size, False, message))
    return out
