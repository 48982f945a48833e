"""`with obj:` for ingest's objects that hold files or connections and have a `close()`.

Standard library only: the SDK's clients use it too.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["Closing"]


class Closing:
    """A base class: `with obj:` returns `obj` and calls `obj.close()` on leaving, always.

    `close` may return something (the SDK's `AuditClient.close` says whether everything
    was delivered); `with` ignores it.
    """

    def close(self) -> object:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
