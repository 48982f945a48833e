"""auditlake's core: schema, canonical encoding, Merkle log, signing, Delta storage.

Imports nothing above it (no CLI, TUI or dashboard code), so any service can embed it.
"""
