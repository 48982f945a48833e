"""The config home's private files: one permission rule, one way to create, read and write.

Every file in the config home (signing keys, master keys, trusted keys, the access policy,
sign-in tokens, the witness list, collector tokens) is created mode 0600 in a 0700 home,
and refused on read when its group or other users may reach it (`check_private`, as ssh
does with private keys). The JSON ones are read by `read_private_json` and replaced
atomically by `write_private_json`: a 0600 temporary file beside the target, fsynced, then
renamed over it, so a crash leaves the old document or the new one, never half of either.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from lake.contract import ConfigError, LakeError, UsageError

__all__ = [
    "check_private",
    "create_private",
    "make_home",
    "read_private_json",
    "write_private_json",
]

T = TypeVar("T")


def make_home(home: Path) -> None:
    """Create the config home 0700 (its parents as the umask says) if it is not there."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)


def check_private(
    path: Path, what: str, error: type[LakeError] = ConfigError, *, home: bool = True
) -> None:
    """The one permission rule of the config home, for every file in it and for itself.

    Refuse `path` (and, with `home`, the directory holding it) when its group or other
    users may read, write or enter it, as ssh does with private keys: whoever can read a
    key, the trusted keys or the access policy can impersonate or rewrite them. A missing
    directory is no finding (nothing in it to protect yet).
    """
    targets = [path.parent, path] if home else [path]
    for target in targets:
        try:
            st = target.stat()
        except FileNotFoundError:
            continue
        mode = st.st_mode & 0o777
        if mode & 0o077:
            kind = "config home" if target is not path else what
            want = "700" if target.is_dir() else "600"
            raise error(
                f"the {kind} {target} is accessible by other users (mode {mode:o}); "
                f"run: chmod {want} {target}"
            )


def create_private(path: Path, data: bytes) -> None:
    """A new 0600 file holding `data`, durably; never over an existing file (O_EXCL)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def read_private_json(
    path: Path, what: str, parse: Callable[[Any], T], error: type[LakeError] = ConfigError
) -> T | None:
    """The document in `path` as `parse` makes it, or None when there is no such file.

    The file must pass `check_private`. A file that is not JSON, or that `parse` refuses
    (ValueError, KeyError, TypeError, UsageError), is `error`: "the <what> <path> is
    unreadable: <why>".
    """
    if not path.exists():
        return None
    check_private(path, what)
    try:
        return parse(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError, UsageError) as exc:
        raise error(f"the {what} {path} is unreadable: {exc}") from None


def write_private_json(path: Path, doc: Any) -> None:
    """Replace `path` with `doc` (JSON, two-space indent, final newline), mode 0600,
    atomically; the config home is created 0700 first when it is not there."""
    make_home(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as fh:  # mkstemp creates it 0600
            json.dump(doc, fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).chmod(0o600)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
