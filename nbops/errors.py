"""The errors nbops raises for user mistakes: each one says where, which rule, and the fix."""

from __future__ import annotations


class NbopsError(Exception):
    """A user-facing error: the CLI prints its one-line message and exits with code 2."""

    exit_code = 2

    def __init__(self, message: str, *, fix: str = "", where: str = "") -> None:
        self.message = message
        self.fix = fix
        self.where = where
        super().__init__(self.render())

    def render(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text} {self.fix}".strip() if self.fix else text


class NotebookError(NbopsError):
    """The file cannot be read as a notebook nbops understands."""


class NotebookNotFound(NotebookError):
    """The path does not name a readable file."""


class NotebookInvalid(NotebookError):
    """The file is not JSON, not a notebook, or fails nbformat's schema."""


class UnsupportedKernel(NotebookError):
    """The notebook's kernel is not Python, so its cells cannot be analysed as Python."""
