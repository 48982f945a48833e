"""Helpers for the lake tests: the golden lake's type and its copies, new empty lakes.

Importable by name from tests/lake (pytest puts the folder on sys.path), unlike conftest.py,
whose module name every test folder shares.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from lake.log import NoteSigner, VerifierKey
from lake.query import QuerySession, ReadAudit
from lake.secrets import FIELDS, AccessPolicy, KeyStore, TrustStore
from lake.storage import Lake

# A copy of the golden lake, the key that signed it, and the keys its home trusts.
LakeCopy = tuple[Lake, NoteSigner, list[VerifierKey]]
# A new lake, its signer, the keys its home trusts, and that home.
Fresh = tuple[Lake, NoteSigner, list[VerifierKey], Path]
# The `encrypted_lake` fixture: wire events of tenant acme in, the lake and its home out.
EncryptedAppend = Callable[[list[dict[str, object]]], tuple[Lake, Path]]


@dataclass
class Built:
    """The golden lake (built once per session by conftest.py) and its config home."""

    root: Path
    home: Path

    def copy(self, dest: Path) -> LakeCopy:
        """A copy of the lake in `dest/lake`, signed and trusted as by the original home."""
        shutil.copytree(self.root, dest / "lake")
        return Lake.open(dest / "lake"), KeyStore(self.home).active(), TrustStore(self.home).keys()

    def copy_with_home(self, dest: Path) -> LakeAndHome:
        """A copy of the lake and of its home (for tests that change the home)."""
        return LakeAndHome(self, dest)


class LakeAndHome:
    """A copy of a built lake in `dest/lake` with its own copy of the home in `dest/home`:
    for tests that grant, rotate keys or read through audited query sessions."""

    def __init__(self, built: Built, dest: Path) -> None:
        shutil.copytree(built.root, dest / "lake")
        shutil.copytree(built.home, dest / "home")  # copy2 keeps the key file's 0600 mode
        self.root = dest / "lake"
        self.home = dest / "home"
        self.lake = Lake.open(self.root)
        self.signer: NoteSigner = KeyStore(self.home).active()
        self.policy = AccessPolicy(self.home)

    def session(self, name: str) -> QuerySession:
        """`name`'s query session under the home's grants, its reads audited (source "test")."""
        audit = ReadAudit(self.lake, self.signer, source="test")
        return QuerySession(self.lake, self.policy.principal(name), audit, interface="test")


def new_lake(
    root: str | Path,
    home: Path,
    origin: str,
    *,
    encrypted: bool = False,
    storage_options: Mapping[str, str] | None = None,
) -> tuple[Lake, NoteSigner]:
    """An empty lake at `root` (encrypting every field of `FIELDS` if `encrypted`), signed by
    a new key "k" of the config home `home`, trusted there."""
    signer = KeyStore(home).generate("k")
    TrustStore(home).add(signer.verifier_key)
    extra = {"encryption": {"enabled": True, "fields": list(FIELDS)}} if encrypted else None
    lake = Lake.init(
        root, origin, signer.verifier_key.encode(), extra=extra, storage_options=storage_options
    )
    return lake, signer


def fresh_lake(dest: Path, origin: str, *, encrypted: bool = False) -> Fresh:
    """`new_lake` in `dest/lake` with its home in `dest/home`, and the keys that home trusts."""
    lake, signer = new_lake(dest / "lake", dest / "home", origin, encrypted=encrypted)
    return lake, signer, TrustStore(dest / "home").keys(), dest / "home"


def json_values(*, text: int, keys: int) -> st.SearchStrategy[Any]:
    """Any JSON value: null, booleans, integers beyond 64 bits, finite floats, strings of up
    to `text` characters, and arrays and objects (keys of up to `keys` characters) of them."""
    return st.recursive(
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=text),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=keys), inner, max_size=3)
        ),
        max_leaves=5,
    )
