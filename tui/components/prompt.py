"""A one-line modal prompt for a file path, prefilled with a default in the working
directory: Enter writes there, Escape cancels. Used by export and evidence packs."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static


class PathPrompt(ModalScreen[Path | None]):
    """Dismissed with the chosen path (relative ones resolved against `workdir`)."""

    AUTO_FOCUS = "#prompt-input"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]  # noqa: RUF012

    def __init__(self, title: str, default: Path, workdir: Path, hint: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.default = default
        self.workdir = workdir
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-box"):
            yield Label(self.title_text, id="prompt-title")
            yield Input(value=str(self.default), id="prompt-input")
            yield Static(
                (self.hint + "\n" if self.hint else "") + "Enter writes · Escape cancels",
                id="prompt-hint",
            )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            self.notify("give a file path", severity="warning")
            return
        path = Path(text).expanduser()
        self.dismiss(path if path.is_absolute() else self.workdir / path)

    def action_cancel(self) -> None:
        self.dismiss(None)
