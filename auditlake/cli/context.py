"""What every command shares: `Ctx` (lake, config home, principal) and `handle_errors`.

A library error becomes a one-line reason on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import errno
import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click

from auditlake.cli.output import ExitCode, fail, note
from lake.contract import LakeError, ValidationError
from lake.secrets import (
    LOCAL_OPERATOR,
    AccessDenied,
    AccessPolicy,
    KeyStore,
    Principal,
    config_home,
)
from lake.storage import Lake

if TYPE_CHECKING:
    from lake.log import NoteSigner
    from lake.query import ReadAudit

F = TypeVar("F", bound=Callable[..., Any])
MAX_ERRORS_SHOWN = 20


class Ctx:
    """What every command needs: where the lake and the config home are, and who asks."""

    def __init__(self, lake: str, principal: str) -> None:
        self.lake_path = lake
        self.principal = principal
        self.home = config_home()

    def open(self) -> Lake:
        return Lake.open(self.lake_path)

    def keys(self) -> KeyStore:
        return KeyStore(self.home)

    def who(self) -> Principal:
        """The principal with its grants from the config home's access policy."""
        return AccessPolicy(self.home).principal(self.principal)

    def require_operator(self, what: str) -> None:
        """Writes and management are the local operator's (per-tenant roles are for reads)."""
        if self.principal != LOCAL_OPERATOR:
            fail(f"{what} is reserved for the local operator {LOCAL_OPERATOR!r} (--as admin)")

    def read_audit(self, lake: Lake) -> ReadAudit:
        """The read audit the CLI's reads are recorded in, signed with the active key."""
        from lake.query import ReadAudit

        return ReadAudit(lake, self.keys().active(), source="auditlake-cli")

    def ensure_signer(self, name: str) -> tuple[NoteSigner, bool]:
        """The active signing key, or a new one called `name` (trusted here); and whether
        it was created now."""
        from lake.secrets import TrustStore

        store = self.keys()
        if store.active_name() is not None:
            return store.active(), False
        signer = store.generate(name)
        TrustStore(self.home).add(signer.verifier_key)
        return signer, True


pass_ctx = click.make_pass_decorator(Ctx)


@contextmanager
def refusal_recorded(
    audit: ReadAudit, who: Principal, interface: str, query: str, tenants: Sequence[str]
) -> Iterator[None]:
    """A refused read (AccessDenied in the block) is recorded in the read audit, like a
    refused search, before the refusal goes on to the user."""
    try:
        yield
    except AccessDenied as exc:
        audit.record(who, interface=interface, query=query, tenants=list(tenants),
                     outcome="failure", reason=str(exc))  # fmt: skip
        raise


def handle_errors(fn: F) -> F:
    """Turn library errors into a one-line message and exit code 2 (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ValidationError as exc:
            show_issues(exc.source, exc.issues)
            fail(f"{exc.source}: {len(exc.issues)} problem(s); nothing was written")
        except LakeError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            fail("interrupted", ExitCode.USAGE)
        except BrokenPipeError:
            raise  # the reader went away: main() ends quietly
        except OSError as exc:  # the machine's refusal (full disk, read-only, permissions)
            fail(os_error_line(exc))

    return wrapper  # type: ignore[return-value]


def show_issues(source: str, issues: list[Any]) -> None:
    """The first MAX_ERRORS_SHOWN problems of an input on stderr, one a line."""
    for issue in issues[:MAX_ERRORS_SHOWN]:
        note(f"{source}: {issue}")
    if len(issues) > MAX_ERRORS_SHOWN:
        note(f"… and {len(issues) - MAX_ERRORS_SHOWN} more")


def os_error_line(exc: OSError) -> str:
    """One line for an error of the machine, naming the path and errno, never a traceback:
    what a full disk or a read-only mount under a long job looks like to its operator."""
    where = f"{exc.filename}: " if exc.filename else ""
    what = exc.strerror or type(exc).__name__
    name = errno.errorcode.get(exc.errno or 0)
    return f"{where}{what}" + (f" ({name})" if name else "")
