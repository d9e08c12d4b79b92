"""Where nbops's Jinja templates live, and the environment every layer renders them with.

Templates are data (templates/ in a checkout, nbops/templates/ in an installed wheel); the
build, the CI report and the widgets each render their own, through one loader.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2

PACKAGE = Path(__file__).resolve().parent
# Installed, the wheel holds the templates inside the package; in a checkout they sit beside it.
CANDIDATES = (PACKAGE / "templates", PACKAGE.parent / "templates")


def template_dirs() -> list[Path]:
    """The templates folder: inside the package when installed, beside it in a checkout."""
    found = [path for path in CANDIDATES if path.is_dir()]
    if not found:
        places = " or ".join(str(path) for path in CANDIDATES)
        raise FileNotFoundError(f"nbops's templates are missing: looked in {places}; reinstall")
    return found


def templates_dir() -> Path:
    """The first templates folder, for tools that take one base directory (nbconvert)."""
    return template_dirs()[0]


def new_environment(
    *, html: bool = False, filters: dict[str, Callable[..., Any]] | None = None
) -> jinja2.Environment:
    """A strict environment over the templates: an undefined name fails the render.

    `html` escapes what the context holds (notebook text shown in a page); code templates
    keep it as it is.
    """
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(path) for path in template_dirs()]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=not html,
        autoescape=html,
    )
    environment.filters.update(filters or {})
    return environment
