"""Key rotation without breaking history: a checkpoint signed by both keys announces the new one.

`rotate` creates a new signing key, signs each tenant's current tree head with the old
*and* the new key (a C2SP note may carry several signatures) and appends it to the
checkpoints table, then makes the new key active. A verifier that trusts only the old key
sees the new key vouched for by the old one at that point and trusts it from there on
(`verify` follows that chain, checkpoint by checkpoint); one that trusts only the new key
still has the old checkpoints signed by a key it can add with a validity window.

Afterwards `KeyStore.retire` destroys the old private key (forward security), and
`TrustStore.set_attr(key, "revoked", when)` marks a compromised key: checkpoints it
signed after that moment are findings.

Every moment here is a *signed* one: the announcement signs its time (a `time` line of
the checkpoint), the old key's `not-after` is set just past that time, and verify judges
each checkpoint by the time it signs, never by the `sealed_at` column. So the old key,
even stolen, cannot vouch for a tree head signed after the announcement: it would have
to sign a later time (outside its window) or an earlier one for a larger tree (a time
going backwards along the log, which verify reports).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lake.contract import SigningKeyError
from lake.log import NoteSigner, TileLog, tree_root
from lake.secrets import KeyStore, TrustStore
from lake.storage import Lake, retry_on_conflict
from lake.write._seal import checkpoint_row, commit_checkpoints

ATTEMPTS = 8


@dataclass
class Rotation:
    old: str
    new: str
    announced: dict[str, int]  # tenant -> tree size of its announcement checkpoint
    verifier_key: str


def _announce(
    lake: Lake, old: NoteSigner, new: NoteSigner, new_name: str
) -> tuple[dict[str, int], datetime]:
    """One attempt: every tenant's sealed tree head signed by both keys, committed at once;
    returns the size announced per tenant and the signed moment (a lost race raises)."""
    checkpoints = lake.checkpoints_table()
    rows, txns = [], []
    announced: dict[str, int] = {}
    moment = datetime.now(UTC)
    for tenant in lake.tenants():
        size = Lake.sealed_size(checkpoints, tenant)
        if size == 0:
            continue
        root = tree_root(size, TileLog(lake, tenant).node_fn(size))
        row, txn = checkpoint_row(
            lake, tenant, size, root, [old, new], f"key-rotation:{new_name}", at=moment
        )
        rows.append(row)
        txns.append(txn)
        announced[tenant] = size
    if rows:
        commit_checkpoints(checkpoints, rows, txns, "key-rotation")
    return announced, moment


def rotate(lake: Lake, store: KeyStore, trust: TrustStore, new_name: str) -> Rotation:
    """Create `new_name`, announce it in every tenant's log, make it active."""
    old = store.file_active()
    if new_name in store.names():
        raise SigningKeyError(f"a key named {new_name!r} already exists")
    new = store.generate(new_name, activate=False)
    trust.add(new.verifier_key)
    lake.publish_key(new.verifier_key.encode())
    announced, moment = retry_on_conflict(
        lambda: _announce(lake, old, new, new_name),
        "gave up announcing the new key",
        attempts=ATTEMPTS,
    )
    store.activate(new_name)
    # The old key's last valid moment is the announcement it signed: one microsecond
    # later it is outside its window, whatever a checkpoint's row says.
    trust.set_attr(old.verifier_key, "not-after", moment + timedelta(microseconds=1))
    return Rotation(old.name, new_name, announced, new.verifier_key.encode())
