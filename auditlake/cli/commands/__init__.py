"""The `auditlake` commands, one module per concern; auditlake/cli/__init__.py registers
them on the root group (importing a module here registers nothing)."""
