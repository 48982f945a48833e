"""The Search page's form as one SearchFilter, combined the way `auditlake search` does it.

The CLI takes a query string plus options (--actor, --since, …); the page takes the same
query string plus form fields. Both merge the two with `SearchFilter.merge` (AND, never
widening) and re-parse the canonical string, so they share one parser, one set of checks
and one canonical form in the read audit. This lives here rather than being imported
from the CLI because the CLI sits above the dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass

from lake.api import SearchFilter, parse_query, parse_time


def split_values(text: str) -> tuple[str, ...]:
    """`"a, b"` → `("a", "b")`: a form field may hold several values, any of which matches."""
    return tuple(v.strip() for v in text.split(",") if v.strip())


@dataclass(frozen=True)
class SearchForm:
    """What the Search page's fields hold (every field empty: no restriction)."""

    query: str = ""
    tenants: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    actor: str = ""
    action: str = ""
    ip: str = ""
    target: str = ""
    source: str = ""
    text: str = ""
    since: str = ""
    until: str = ""

    def to_filter(self) -> SearchFilter:
        """One filter: the query string AND the fields (UsageError names a bad value)."""
        filt = parse_query(self.query) if self.query.strip() else SearchFilter()
        fields = SearchFilter(
            tenants=self.tenants,
            categories=self.categories,
            outcomes=self.outcomes,
            severities=self.severities,
            actors=split_values(self.actor),
            actions=split_values(self.action),
            ips=split_values(self.ip),
            targets=split_values(self.target),
            sources=split_values(self.source),
            text=(self.text.strip(),) if self.text.strip() else (),
            since=parse_time(self.since.strip()) if self.since.strip() else None,
            until=parse_time(self.until.strip()) if self.until.strip() else None,
        )
        return parse_query(filt.merge(fields).to_query_string())
