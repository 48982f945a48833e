"""Options several commands share, declared once: output format, tenants, engine, the
listening address, and batching."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from auditlake.cli.output import fail
from lake.verify import Engine

F = TypeVar("F", bound=Callable[..., Any])


def format_option(
    *choices: str, default: str = "table", flag: str = "--format"
) -> Callable[[F], F]:
    """The shared output-format option (`--format`, or `flag` where `--format` is taken)."""
    return click.option(
        flag,
        "fmt",
        type=click.Choice(list(choices)),
        default=default,
        show_default=True,
        help="Output format: tables for people, json for programs.",
    )


def engine_options(fn: F) -> F:
    """`--engine local|ray` and `--address`: where verify and detect run their work."""
    fn = click.option(
        "--address",
        metavar="HOST:PORT",
        help="With --engine ray: the Ray cluster to use (the address `ray start --head` "
        "prints). Default: $RAY_ADDRESS, else a local Ray instance for this run with one "
        "worker per core.",
    )(fn)
    return click.option(
        "--engine",
        type=click.Choice([e.value for e in Engine]),
        default=Engine.LOCAL.value,
        show_default=True,
        help="local: this machine, one process per core; ray: tasks per tenant and seq "
        "range on a Ray cluster (the 'scale' extra), with the same results.",
    )(fn)


def engine_address(engine: str, address: str | None) -> str | None:
    """The Ray address to use (None: start a local instance); refuse --address without ray."""
    if engine != Engine.RAY:
        if address:
            fail("--address needs --engine ray")
        return None
    return address or os.environ.get("RAY_ADDRESS") or None


def tenant_option(required: bool = True, multiple: bool = False) -> Callable[[F], F]:
    return click.option(
        "--tenant",
        "tenant",
        required=required,
        multiple=multiple,
        help="Tenant id." + (" Repeat for several." if multiple else ""),
    )


def listen_options(port: int, port_help: str = "TCP port to listen on.") -> Callable[[F], F]:
    """`--host` and `--port` of a command that serves HTTP."""

    def attach(fn: F) -> F:
        fn = click.option(
            "--port",
            type=click.IntRange(1, 65535),
            default=port,
            show_default=True,
            help=port_help,
        )(fn)
        return click.option(
            "--host", default="127.0.0.1", show_default=True, help="Address to listen on."
        )(fn)

    return attach


def batch_options(events_help: str, age_help: str) -> Callable[[F], F]:
    """`--batch-events` and `--batch-age`: when a writer seals and commits what it holds."""

    def attach(fn: F) -> F:
        fn = click.option(
            "--batch-age",
            type=click.FloatRange(0.01),
            default=1.0,
            show_default=True,
            help=age_help,
        )(fn)
        return click.option(
            "--batch-events",
            type=click.IntRange(1),
            default=50_000,
            show_default=True,
            help=events_help,
        )(fn)

    return attach
