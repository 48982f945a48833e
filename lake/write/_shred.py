"""Crypto-shredding: destroy a tenant's data keys (or one subject's), recorded first.

The order is the contract: refuse what cannot be done as promised (not an encrypted lake,
a legal hold, a master key that cannot be rotated) before anything changes; then sign a
`key.shred` event into the reserved tenant's log (naming a subject only by its hash);
then destroy the keys, which rotates the config home's master key.
"""

from __future__ import annotations

from datetime import UTC, datetime

from lake.contract import UsageError
from lake.secrets import KeyStore, Principal, encrypted, keyring_for
from lake.storage import Lake, check_tenant
from lake.write._retention import record_action

NOT_ENCRYPTED = "this lake was not created with --encrypt: there is no data key to shred"


def require_encrypted(lake: Lake) -> None:
    """Refuse a lake without data keys (created without --encrypt)."""
    if not encrypted(lake):
        raise UsageError(NOT_ENCRYPTED)


def shred(
    lake: Lake, keys: KeyStore, who: Principal, tenant: str, subject: str | None = None
) -> int:
    """Destroy `tenant`'s data keys, or only `subject`'s (an actor id: a GDPR erasure).

    Returns how many data keys went. Their fields read as NULL from then on, while every
    event, checkpoint and proof still verifies (the leaves cover the ciphertext).
    """
    check_tenant(tenant)
    require_encrypted(lake)
    ring = keyring_for(lake, keys.home)
    details = {} if subject is None else {"subject_sha256": ring.subject_id(tenant, subject)}
    ring.check_shred(tenant)  # a hold or an unrotatable master key: refused before the record
    record_action(lake, keys.active(), who, "key.shred", tenant, details, datetime.now(UTC))
    return ring.shred(tenant, subject)
