"""Checking v4 notebooks against nbformat's own JSON schemas, without importing nbformat.

Next to jupyter_server, `import nbformat` costs over a second (its jsonschema import pulls in
format checkers that build grammars), and every nbops command reads a notebook. So the
schema files are read from nbformat's folder, compiled with fastjsonschema (nbformat's own
default validator) and the compiled code is cached; only a notebook that fails the check pays
for nbformat, whose messages say best what is wrong.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import marshal
import os
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

Validate = Callable[[Any], Any]


def is_valid_v4(data: Any, minor: int) -> bool | None:
    """True or False by the schema of nbformat 4.<minor>; None when it cannot be told here."""
    validate = _validator(minor)
    if validate is None:
        return None
    import fastjsonschema

    try:
        validate(data)
    except fastjsonschema.JsonSchemaException:
        return False
    except RecursionError:
        return None
    return True


@cache
def _validator(minor: int) -> Validate | None:
    schema = _schema_file(minor)
    if schema is None:
        return None
    text = schema.read_bytes()
    namespace: dict[str, Any] = {}
    try:
        exec(_compiled(text, minor), namespace)  # code fastjsonschema generated from the schema
    except Exception:
        return None
    validate: Validate = namespace["validate"]
    return validate


def _schema_file(minor: int) -> Path | None:
    spec = importlib.util.find_spec("nbformat")  # finds the folder; runs none of its code
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "v4"
    schema = path / f"nbformat.v4.{minor}.schema.json"
    return schema if schema.is_file() else None


def _compiled(schema: bytes, minor: int) -> Any:
    import fastjsonschema

    key = hashlib.sha256(schema + sys.version.encode() + fastjsonschema.VERSION.encode())
    cached = _cache_dir() / f"nbformat-v4.{minor}-{key.hexdigest()[:16]}.marshal"
    try:
        return marshal.loads(cached.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        pass
    source = fastjsonschema.compile_to_code(json.loads(schema))
    code = compile(source, f"<nbformat v4.{minor} schema>", "exec")
    _store(cached, marshal.dumps(code))
    return code


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nbops"


def _store(path: Path, data: bytes) -> None:
    """Best effort: a read-only home only means compiling again next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(f".{os.getpid()}.tmp")
        temp.write_bytes(data)
        os.replace(temp, path)
    except OSError:
        pass
