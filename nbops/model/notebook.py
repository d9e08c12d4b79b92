"""The notebook model: cells with their index, stable id, source and tags, read with nbformat."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbops.errors import NotebookInvalid, NotebookNotFound, NotebookTooLarge, UnsupportedKernel
from nbops.model.diagnostic import Diagnostic, Severity
from nbops.model.nbschema import is_valid_v4

RESAVE_FIX = "Restore it from version control, or open and re-save it in Jupyter."
TOO_DEEP = "is nested too deeply to be a notebook."
CELL_KINDS = "it is not a valid code, markdown or raw cell (check its cell_type and fields)"


@dataclass(frozen=True)
class Cell:
    index: int
    id: str
    cell_type: str
    source: str
    tags: tuple[str, ...] = ()

    @property
    def is_code(self) -> bool:
        return self.cell_type == "code"


@dataclass(frozen=True)
class Notebook:
    """A notebook as nbops sees it; `path` is what messages name, `sha256` hashes the file."""

    path: str
    cells: tuple[Cell, ...]
    language: str = "python"
    sha256: str = ""
    notes: tuple[Diagnostic, ...] = ()

    @property
    def name(self) -> str:
        """The notebook's stem, used to name builds and deployments."""
        return Path(self.path).stem

    @property
    def display_name(self) -> str:
        return Path(self.path).name


def load_notebook(path: str | Path) -> Notebook:
    """Read and parse a notebook file; the file itself is never written."""
    file = Path(path)
    size = _regular_file_size(file, str(path))
    limit = max_notebook_bytes()
    if size > limit:
        raise NotebookTooLarge(
            f"is {size / 1e6:,.0f} MB; nbops reads notebooks up to {limit / 1e6:,.0f} MB.",
            where=str(path),
            fix="Outputs make notebooks large: clear them (jupyter nbconvert --clear-output "
            "--inplace NOTEBOOK), or raise the limit with NBOPS_MAX_NOTEBOOK_MB.",
        )
    return parse_notebook(file.read_bytes(), str(path))


def max_notebook_bytes() -> int:
    """The largest notebook nbops reads: NBOPS_MAX_NOTEBOOK_MB megabytes, 100 by default."""
    try:
        return int(float(os.environ.get("NBOPS_MAX_NOTEBOOK_MB", "100")) * 1_000_000)
    except ValueError:
        return 100_000_000


def _regular_file_size(file: Path, label: str) -> int:
    """The file's size; a missing path, a folder, a pipe or a device is a clear error."""
    fix = "Check the path; nbops takes the path of an .ipynb file."
    try:
        info = file.stat()
    except FileNotFoundError:
        raise NotebookNotFound("no such notebook file.", where=label, fix=fix) from None
    except OSError as error:  # a name too long, a loop of links, no permission
        raise NotebookNotFound(
            f"cannot be read: {error.strerror}.", where=label[:200], fix=fix
        ) from None
    if stat.S_ISDIR(info.st_mode):
        raise NotebookNotFound("is a folder, not a notebook.", where=label, fix=fix)
    if not stat.S_ISREG(info.st_mode):
        raise NotebookNotFound(
            "is not a regular file (a pipe, a device or a socket), not a notebook.",
            where=label,
            fix=fix,
        )
    return info.st_size


def parse_notebook(raw: bytes | str, path: str) -> Notebook:
    """Turn a notebook's bytes into the model: v3 is upgraded, v4 validated, ids made stable."""
    data = _json_of(raw, path)
    nb, lacked_ids = _to_nbformat_v4(data, path)
    language = _language_of(nb.get("metadata", {}))
    if not language.lower().startswith("python"):
        raise UnsupportedKernel(
            f"its kernel runs {language!r}; nbops analyses Python notebooks only.",
            where=path,
            fix="Use a Python kernel (set metadata.kernelspec to a Python kernel).",
        )
    raw_cells = nb.get("cells", [])
    if not any(cell.get("cell_type") == "code" for cell in raw_cells):
        raise NotebookInvalid(
            "has no code cells, so there is nothing to analyse.",
            where=path,
            fix="Add code cells and tag them (step:<name>, setup, parameters, ...).",
        )
    ids, notes = _stable_ids(raw_cells, lacked_ids)
    cells = tuple(
        Cell(
            index=index,
            id=ids[index],
            cell_type=str(cell.get("cell_type", "code")),
            source=_text(cell.get("source", "")),
            tags=_tags_of(cell),
        )
        for index, cell in enumerate(raw_cells)
    )
    digest = hashlib.sha256(raw.encode() if isinstance(raw, str) else raw).hexdigest()
    return Notebook(path=path, cells=cells, language=language, sha256=digest, notes=notes)


def notebook_from_dict(data: dict[str, Any], path: str) -> Notebook:
    """Parse a notebook given as JSON data (e.g. the unsaved content a browser sends)."""
    try:
        text = json.dumps(data)
    except RecursionError:
        raise NotebookInvalid(TOO_DEEP, where=path, fix=RESAVE_FIX) from None
    return parse_notebook(text, path)


def _json_of(raw: bytes | str, path: str) -> dict[str, Any]:
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise NotebookInvalid(
                f"is not UTF-8 text (byte {error.start}).", where=path, fix=RESAVE_FIX
            ) from None
    if not raw.strip():
        raise NotebookInvalid("is empty.", where=path, fix=RESAVE_FIX)
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        raise NotebookInvalid(
            f"is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}).",
            where=path,
            fix=RESAVE_FIX,
        ) from None
    except RecursionError:
        raise NotebookInvalid(TOO_DEEP, where=path, fix=RESAVE_FIX) from None
    if not isinstance(data, dict) or "nbformat" not in data:
        raise NotebookInvalid(
            "is JSON but not a Jupyter notebook: it has no 'nbformat' field.",
            where=path,
            fix="Pass an .ipynb file saved by Jupyter.",
        )
    return data


def _to_nbformat_v4(data: dict[str, Any], path: str) -> tuple[Any, bool]:
    """Validate and upgrade with nbformat's own code; returns the v4 node and whether ids lacked.

    The raw data is validated before nbformat builds nodes from it, so a broken file gets
    the schema's message rather than an AttributeError from deep inside nbformat.
    """
    major, minor = _format_of(data, path)
    if major == 4 and minor < 5 and _has_ids(data.get("cells")):
        # Older-minor files with ids exist in the wild; Jupyter opens them as 4.5 (in memory).
        data["nbformat_minor"] = minor = 5
    if major == 4 and minor >= 5:
        _fill_missing_ids(data.get("cells"))
    if major == 4 and is_valid_v4(data, minor):
        return data, minor < 5  # valid as it is: no need for nbformat's own (slow) import
    _validate(data, major, minor, path)
    import nbformat
    from nbformat.validator import ValidationError

    try:
        nb = nbformat.versions[major].to_notebook_json(data, minor=minor)
        if major == 3:
            nb = nbformat.convert(nb, 4)  # type: ignore[no-untyped-call]
    except ValidationError as error:
        raise NotebookInvalid(
            f"does not follow the notebook format: {_first_line(error)}",
            where=path,
            fix=RESAVE_FIX,
        ) from None
    except RecursionError:
        raise NotebookInvalid(TOO_DEEP, where=path, fix=RESAVE_FIX) from None
    return nb, major == 3 or minor < 5


def _has_ids(cells: Any) -> bool:
    return isinstance(cells, list) and any(isinstance(c, dict) and "id" in c for c in cells)


def _format_of(data: dict[str, Any], path: str) -> tuple[int, int]:
    major, minor = data.get("nbformat"), data.get("nbformat_minor", 0)
    if not _is_int(major) or not _is_int(minor):
        raise NotebookInvalid(
            f"its format version (nbformat {major!r}, nbformat_minor {minor!r}) "
            "is not two whole numbers.",
            where=path,
            fix=RESAVE_FIX,
        )
    if major not in (3, 4):
        raise NotebookInvalid(
            f"uses notebook format {major}.{minor}; nbops reads formats 3 and 4.",
            where=path,
            fix="Open and re-save it with a current Jupyter.",
        )
    return major, minor


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate(data: dict[str, Any], major: int, minor: int, path: str) -> None:
    """nbformat's schema check, without its repairs (it renames duplicate ids at random)."""
    from nbformat.validator import iter_validate

    try:
        errors = iter_validate(data, version=major, version_minor=minor)  # type: ignore[no-untyped-call]
        error = next(errors, None)
    except RecursionError:
        raise NotebookInvalid(TOO_DEEP, where=path, fix=RESAVE_FIX) from None
    if error is None:
        return
    place = _schema_place(list(getattr(error, "relative_path", None) or ()))
    if getattr(error, "validator", None) == "oneOf" and place.startswith("cell "):
        message = CELL_KINDS
    else:
        message = _first_line(error)
    if len(message) > 160:
        message = message[:157] + "..."
    at = f" at {place}" if place else ""
    raise NotebookInvalid(
        f"does not follow the notebook format{at}: {message}.", where=path, fix=RESAVE_FIX
    )


def _schema_place(steps: list[Any]) -> str:
    """Where in the notebook a schema error is: `cell 3 (outputs/0)`, `metadata/kernelspec`."""
    place = ""
    if steps[:1] == ["worksheets"] and len(steps) >= 4 and steps[2] == "cells":
        place, steps = f"cell {steps[3]} of worksheet {steps[1]}", steps[4:]
    elif steps[:1] == ["cells"] and len(steps) >= 2:
        place, steps = f"cell {steps[1]}", steps[2:]
    rest = "/".join(str(step) for step in steps)
    if place and rest:
        return f"{place} ({rest})"
    return place or rest


def _fill_missing_ids(cells: Any) -> None:
    if not isinstance(cells, list):
        return
    for index, cell in enumerate(cells):
        if isinstance(cell, dict) and not cell.get("id"):
            cell["id"] = _content_id(index, _text(cell.get("source", "")))


def _stable_ids(cells: list[Any], lacked_ids: bool) -> tuple[list[str], tuple[Diagnostic, ...]]:
    """Ids that survive re-reading the same file: kept when present and unique, else derived.

    A repeated id is renamed after its cell's index, to a name no other cell has.
    """
    given = [None if lacked_ids else cell.get("id") for cell in cells]
    taken = {cell_id for cell_id in given if cell_id}
    ids: list[str] = []
    notes: list[Diagnostic] = []
    seen: set[str] = set()
    for index, cell in enumerate(cells):
        cell_id = given[index] or _content_id(index, _text(cell.get("source", "")))
        if cell_id in seen:
            repaired = _unused(f"{cell_id}-{index}", seen | taken)
            notes.append(
                Diagnostic(
                    Severity.WARNING,
                    f"cell id {cell_id!r} is used by an earlier cell too; nbops calls this one "
                    f"{repaired!r}.",
                    "Re-save the notebook in JupyterLab, which gives every cell its own id.",
                    cell_index=index,
                    cell_id=repaired,
                )
            )
            cell_id = repaired
        seen.add(cell_id)
        ids.append(cell_id)
    return ids, tuple(notes)


def _unused(base: str, used: set[str]) -> str:
    candidate, number = base, 1
    while candidate in used:
        candidate, number = f"{base}-{number}", number + 1
    return candidate


def _content_id(index: int, source: str) -> str:
    digest = hashlib.sha256(f"{index}\0{source}".encode()).hexdigest()[:12]
    return f"nbops-{digest}"


def _language_of(metadata: dict[str, Any]) -> str:
    kernelspec = metadata.get("kernelspec") or {}
    info = metadata.get("language_info") or {}
    return str(kernelspec.get("language") or info.get("name") or "python")


def _tags_of(cell: dict[str, Any]) -> tuple[str, ...]:
    tags = (cell.get("metadata") or {}).get("tags") or []
    if not isinstance(tags, list):  # v3 metadata is free-form; a string is not a list of tags
        return ()
    return tuple(tag for tag in tags if isinstance(tag, str) and tag.strip())


def _text(source: Any) -> str:
    return "".join(source) if isinstance(source, list) else str(source)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
