"""The TUI's widgets and screens, one concern per module (the harlequin layout)."""
