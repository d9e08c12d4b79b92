"""A diagnostic: one finding about a notebook, pointing at a cell and line, with a fix."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Diagnostic:
    """Where (cell index and id, 1-based line within the cell) and why, with the fix."""

    severity: Severity
    message: str
    fix: str
    cell_index: int | None = None
    cell_id: str | None = None
    line: int | None = None
    tag: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def location(self, notebook: str) -> str:
        """`churn.ipynb cell 7 [step:train] line 3`, as much of it as is known."""
        parts = [notebook]
        if self.cell_index is not None:
            parts.append(f"cell {self.cell_index}")
        if self.tag:
            parts.append(f"[{self.tag}]")
        if self.line is not None:
            parts.append(f"line {self.line}")
        return " ".join(parts)

    def render(self, notebook: str) -> str:
        return f"{self.location(notebook)}: {self.message} {self.fix}".rstrip()

    def as_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "cell_index": self.cell_index,
            "cell_id": self.cell_id,
            "line": self.line,
            "message": self.message,
            "fix": self.fix,
        }
