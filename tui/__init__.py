"""The investigator TUI: search, pivot, timeline and proof over the lake, in a terminal.

Built on Textual, above `lake` (every read goes through the principal's `LakeSession`,
so it is scoped and recorded in the read audit like any CLI query). `auditlake tui` wires
it to the command line; nothing in `lake/`, `ingest/` or `detect/` imports this package.
"""
