"""`auditlake tui`: CLI wiring of the investigator TUI (tui/).

Registered on the `cli` group by auditlake.cli.
"""
