"""The master key (KEK) that wraps a lake's data keys, kept in the config home and rotated on shred.

Wrapped data keys live in the lake, so every backup of the lake holds them. Destroying a
data key in the lake alone would be undone by restoring an older copy of
`_auditlake/dek/`. So `keys shred` also replaces the master key: it makes a new one,
re-wraps every surviving data key under it, and only then destroys the old one. A copy of
the lake taken before the shred holds data keys wrapped by a key that no longer exists.

Files in the config home (each 0600, created with O_EXCL and fsynced):

    master.key        the current master key (base64 of 32 bytes)
    master.key.next   during a rotation: the new key, until every data key is re-wrapped
    master.key.old    during a rotation: the old key, being destroyed

A rotation goes (1) write `master.key.next`; (2) re-wrap every tenant's data keys under
it, each key file naming its master key by id, durable before (3); (3) rename
`master.key` to `master.key.old` and `master.key.next` to `master.key`; (4) overwrite and
unlink `master.key.old`. A crash at any point leaves every surviving data key wrapped by a
key still on disk: readers load `master.key` and `master.key.next` and pick by id, and the
next shred resumes the rotation (reusing `master.key.next`). `master.key.old` is never
read: by then nothing is wrapped by it.

`AUDITLAKE_MASTER_KEY` (base64) may hold the key instead; auditlake cannot rotate an
environment variable, so shredding refuses it rather than promise an erasure it cannot
keep.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lake.contract import ConfigError
from lake.secrets._private import check_private, create_private, make_home

MASTER_FILE: Final = "master.key"
NEXT_FILE: Final = "master.key.next"
OLD_FILE: Final = "master.key.old"
ENV: Final = "AUDITLAKE_MASTER_KEY"


def kek_id(key: bytes) -> str:
    """A master key's id, as named in the lake's key files (a hash: it reveals nothing)."""
    return hashlib.sha256(b"auditlake-kek\0" + key).hexdigest()[:16]


@dataclass(frozen=True)
class MasterKeys:
    """The master keys one process holds: the one that wraps new data keys, and every
    key on disk (mid-rotation there are two) by id."""

    current: bytes
    by_id: dict[str, bytes] = field(default_factory=dict)
    from_env: bool = False

    @property
    def current_id(self) -> str:
        return kek_id(self.current)


def _decode(raw: bytes, where: str) -> bytes:
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{where} is not base64") from None
    if len(key) != 32:
        raise ConfigError(f"{where} does not hold a 32-byte key")
    return key


def _read(path: Path) -> bytes:
    check_private(path, "master key")
    return _decode(path.read_bytes(), str(path))


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create(path: Path) -> bytes:
    """A new random key in a new 0600 file (O_EXCL: never over an existing one), durable."""
    key = AESGCM.generate_key(bit_length=256)
    create_private(path, base64.b64encode(key) + b"\n")
    _sync_dir(path.parent)
    return key


def destroy(path: Path) -> None:
    """Overwrite a key file with random bytes, fsync, unlink, fsync the directory."""
    if not path.exists():
        return
    size = path.stat().st_size
    with path.open("r+b") as fh:
        fh.write(os.urandom(max(size, 1)))
        fh.flush()
        os.fsync(fh.fileno())
    path.unlink()
    _sync_dir(path.parent)


def load(home: Path, *, create: bool = False) -> MasterKeys:
    """The master keys: $AUDITLAKE_MASTER_KEY, else the config home's files."""
    env = os.environ.get(ENV)
    if env:
        key = _decode(env.encode(), ENV)
        return MasterKeys(key, {kek_id(key): key}, from_env=True)
    path, nxt = home / MASTER_FILE, home / NEXT_FILE
    if not path.exists() and not nxt.exists():
        if not create:
            raise ConfigError(
                f"this lake is encrypted and there is no master key at {path} (nor {ENV})"
            )
        make_home(home)
        _create(path)
    keys = [_read(p) for p in (path, nxt) if p.exists()]
    # master.key wraps new data keys; only a crash between the renames of step (3)
    # leaves master.key.next alone, and then it is the current key.
    return MasterKeys(keys[0], {kek_id(k): k for k in keys})


def begin_rotation(home: Path) -> bytes:
    """Step (1): the new master key, `master.key.next` (a crashed rotation's, if any)."""
    nxt = home / NEXT_FILE
    if nxt.exists():
        return _read(nxt)
    return _create(nxt)


def finish_rotation(home: Path) -> None:
    """Steps (3) and (4), once every data key is durably wrapped by `master.key.next`."""
    path, nxt, old = home / MASTER_FILE, home / NEXT_FILE, home / OLD_FILE
    if nxt.exists():
        if path.exists():
            destroy(old)  # a crashed rotation's leftover: nothing is wrapped by it
            path.rename(old)
        nxt.rename(path)
        _sync_dir(home)
    destroy(old)
