"""Local paths to a lake's table files, for readers that only take local paths (DuckDB).

Why a cache: the query layer and detection read Parquet with DuckDB 2.0.1, which reaches
S3 only through its httpfs extension, and that extension cannot be used here (it would
download at run time; the PyPI builds are for older DuckDB). So on an object-store lake
they read local copies of exactly the files they are allowed, and DuckDB's
`allowed_paths` lists those copies. A local lake needs none of this: `path()` is then the
file in the lake itself and `fetch()` does nothing, so local reads cost what they did.

Why it is safe to keep copies:

- Delta never rewrites a file under the same name (appends, optimize, merge and delete
  all write new names), so a copy whose size is the size the Delta log records for that
  file is that file. A size mismatch after a fresh download means the object was changed
  after it was committed: that is refused with a pointer to `verify`. No content hash is
  checked here: the Delta log holds none to compare with, and integrity is `verify`'s
  job, which reads the lake itself, never this cache.
- Copies are fetched only for files a caller names, and callers name only the files of
  the tenants their principal may read, so a principal's reads never bring another
  tenant's files onto the disk; DuckDB is locked to the listed copies in any case.
- Directories are 0700 and files 0600, outside the lake and the config home:
  `$AUDITLAKE_CACHE`, else the platform's user cache dir (`~/.cache/auditlake`), one
  directory per lake (a digest of its URI and endpoint).
- Files that left the newest snapshot (retention, optimize) are deleted from the cache
  when a reader next lists that tenant (`prune`), so removed data does not linger here.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final

import platformdirs

from lake.contract import StorageError
from lake.storage import _paths as paths
from lake.storage._lake import Lake

CACHE_ENV: Final = "AUDITLAKE_CACHE"
FETCH_THREADS: Final = 8
CHUNK: Final = 1 << 20


def cache_root() -> Path:
    """Where copies of object-store files live: $AUDITLAKE_CACHE or the user cache dir."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return Path(platformdirs.user_cache_dir("auditlake")).resolve()


def lake_key(lake: Lake) -> str:
    """A directory name for one lake: its URI and endpoint, hashed (no secrets in it)."""
    endpoint = ""
    for k, v in lake.storage_options.items():
        if k.lower() in ("aws_endpoint_url", "endpoint_url", "aws_endpoint", "endpoint"):
            endpoint = v
    endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL", "")
    return hashlib.sha256(f"{lake.root}\x00{endpoint}".encode()).hexdigest()[:24]


def _private_dir(path: Path, top: Path) -> None:
    """Create `path` and its parents below `top` with mode 0700 (whatever the umask)."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        if p == top or p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        d.mkdir(mode=0o700, exist_ok=True)
        d.chmod(0o700)


class TableFiles:
    """Local paths for the lake's table files; copies of them when the lake is remote.

    Args:
        lake: the opened lake.
        root: the cache root (default `cache_root()`); unused for local lakes.
    """

    def __init__(self, lake: Lake, root: Path | None = None) -> None:
        self.lake = lake
        self.remote = not lake.is_local
        self._expected: dict[str, tuple[str, int | None]] = {}
        if self.remote:
            top = root or cache_root()
            self.dir = top / "objects" / lake_key(lake)
            _private_dir(self.dir, top)
            self.dir.chmod(0o700)
        else:
            self.dir = Path(lake.base)

    def path(self, rel: str, size: int | None = None) -> str:
        """The local path DuckDB reads for `rel` (relative to the lake root, e.g.
        `events/tenant=a/event_date=…/part-….parquet`); `size` is the Delta log's."""
        local = str(self.dir / rel)
        if self.remote:
            self._expected[local] = (rel, size)
        return local

    def fetch(self, paths: Sequence[str]) -> None:
        """Make sure the copies behind these paths (from `path()`) exist; no-op locally."""
        if not self.remote:
            return
        todo = []
        for local in dict.fromkeys(paths):
            rel, size = self._expected[local]
            if not _fresh(local, size):
                todo.append((local, rel, size))
        if not todo:
            return
        with ThreadPoolExecutor(min(FETCH_THREADS, len(todo))) as pool:
            for done in [pool.submit(self._copy, *item) for item in todo]:
                done.result()

    def _copy(self, local: str, rel: str, size: int | None) -> None:
        target = Path(local)
        _private_dir(target.parent, self.dir)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")  # created 0600
        try:
            got = 0
            with os.fdopen(fd, "wb") as out:
                try:
                    with self.lake.fs.open_input_stream(self.lake.full_path(rel)) as src:
                        while chunk := src.read(CHUNK):
                            out.write(chunk)
                            got += len(chunk)
                except OSError as exc:
                    raise StorageError(
                        f"cannot read {rel} from the lake: {self.lake._message(exc)}"
                    ) from None
            if size is not None and got != size:
                raise StorageError(
                    f"{rel} in the lake has {got} bytes, but the Delta log recorded {size}: "
                    "it was changed after it was committed; run `auditlake verify`"
                )
            Path(tmp).replace(target)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def prune(self, table: str, tenants: Iterable[str], live: Iterable[str]) -> int:
        """Delete cached files of these tenants' partitions of `table` that are not `live`
        (local paths from `path()`); returns how many went. No-op locally."""
        if not self.remote:
            return 0
        keep = set(live)
        removed = 0
        for tenant in tenants:
            top = self.dir / paths.partition_dir(table, tenant)
            if not top.is_dir():
                continue
            for dirpath, _dirs, files in os.walk(top):
                for name in files:
                    full = Path(dirpath) / name
                    # A `.tmp-` file is a copy in flight (maybe another process's).
                    if str(full) not in keep and not name.startswith(".tmp-"):
                        full.unlink(missing_ok=True)
                        removed += 1
        return removed


def _fresh(local: str, size: int | None) -> bool:
    try:
        st = Path(local).stat()
    except FileNotFoundError:
        return False
    return size is None or st.st_size == size
