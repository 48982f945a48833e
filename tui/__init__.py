"""The investigator TUI built on Textual (issue #6)."""
