"""`auditlake dashboard`: CLI wiring of the auditor dashboard (dashboards/).

Registered on the `cli` group by auditlake.cli.
"""
