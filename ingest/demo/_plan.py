"""The demo's plan: checked arguments, tenants, planted incidents, the day-by-day stream."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from ingest.demo._attacks import PLANTERS, Planter
from ingest.demo._model import (
    INCIDENT_KINDS,
    INCIDENT_SLOT,
    US_PER_DAY,
    Incident,
    us_of,
)
from ingest.demo._traffic import Tenant
from lake.spec import TENANT_PATTERN, gc_paused, is_valid_tenant


class Plan:
    """Checked arguments, the tenants, the planted incidents, and the day-by-day stream."""

    def __init__(
        self,
        tenants: Sequence[str],
        days: int,
        end: date,
        events_per_tenant_per_day: int,
        seed: int,
        incidents: bool,
    ) -> None:
        if isinstance(tenants, str):
            raise ValueError("tenants must be a sequence of names, not one string")
        names = list(tenants)
        if not names:
            raise ValueError("at least one tenant is required")
        for name in names:
            if not isinstance(name, str) or not is_valid_tenant(name):
                raise ValueError(f"invalid tenant name {name!r}: must match {TENANT_PATTERN}")
        if len(set(names)) != len(names):
            raise ValueError("tenant names must be unique")
        if days < 1:
            raise ValueError("days must be at least 1")
        if events_per_tenant_per_day < 0:
            raise ValueError("events_per_tenant_per_day must not be negative")
        if seed < 0:
            raise ValueError("seed must not be negative")
        if isinstance(end, datetime):  # a datetime is a date too; use its calendar day
            end = end.date()
        self.days = days
        self.window_start = us_of(end) - (days - 1) * US_PER_DAY
        self.window_end = us_of(end) + US_PER_DAY
        self.tenants = [Tenant(n, seed, self.window_start, days) for n in names]
        total = days * events_per_tenant_per_day
        self.counts = [t.day_counts(total) for t in self.tenants]
        self.incidents: list[Incident] = []
        self.planted: dict[int, list[tuple[int, dict[str, Any]]]] = {}
        if incidents:
            for kind in INCIDENT_KINDS:
                tenant = self.tenants[INCIDENT_SLOT[kind] % len(self.tenants)]
                planter = Planter(tenant, kind)
                plant = PLANTERS[kind]
                self.incidents.append(
                    plant(planter, tenant, planter.rng, self.window_start, self.window_end)
                )
                for t_us, event in planter.events:
                    day = (t_us - self.window_start) // US_PER_DAY
                    self.planted.setdefault(day, []).append((t_us, event))
            self.incidents.sort(key=lambda inc: (inc.start, inc.kind))

    def stream(self) -> Iterator[dict[str, Any]]:
        for batch in self.day_batches():
            yield from batch

    def day_batches(self) -> Iterator[list[dict[str, Any]]]:
        """One time-sorted list of events per UTC day of the window (all tenants)."""
        first_busy = [next((d for d, c in enumerate(cs) if c >= 5), -1) for cs in self.counts]
        for day in range(self.days):
            day_us = self.window_start + day * US_PER_DAY
            times: list[npt.NDArray[np.int64]] = []
            events: list[dict[str, Any]] = []
            with gc_paused():
                for ti, tenant in enumerate(self.tenants):
                    n = self.counts[ti][day]
                    t_us, evs = tenant.traffic(day, day_us, n, first_busy[ti] == day)
                    times.append(t_us)
                    events += evs
            extra = self.planted.get(day, [])
            if extra:
                times.append(np.array([t for t, _ in extra], dtype=np.int64))
                events += [e for _, e in extra]
            if not events:
                continue
            order = np.argsort(np.concatenate(times), kind="stable").tolist()
            yield [events[i] for i in order]
