"""The `auditlake` command: thin wiring of `lake`, `ingest` and the packages above them."""
