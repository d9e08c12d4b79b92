"""Artifacts of the churn service: loaded once at start-up, each checked against nbops.json.

`start` reads the build's manifest, loads every value the serve functions read from the
artifact store, refusing a file that is missing or whose sha256 is not the one the build
recorded, then imports `service.endpoints`. When anything is wrong the service still runs, so
/healthz answers and /readyz says why, but every serve route answers 503: never half-working.

Generated from churn.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

import hashlib
import importlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from pipeline.store import ArtifactStore, deserialise

# What the serve functions read: name -> "<step>.<name>", the step of the run that made it.
ARTIFACTS: dict[str, str] = {
    "feature_columns": "features.feature_columns",
    "model": "train.model",
}

log = logging.getLogger("service")
_values: dict[str, Any] = {}


class NotReady(Exception):
    """Why the service cannot serve; the message names the artifact or the file at fault."""


@dataclass(frozen=True)
class Startup:
    """What start-up found: the manifest (once read), the serve functions (once their artifacts
    are loaded and checked).

    `reason` says why `endpoints` is None.
    """

    manifest: dict[str, Any] | None
    endpoints: ModuleType | None
    reason: str = ""


def start(manifest_path: Path, directory: Path) -> Startup:
    """Read the manifest, load and check the artifacts, import the serve functions; log it."""
    started = time.perf_counter()
    manifest: dict[str, Any] | None = None
    try:
        manifest = read_manifest(manifest_path)
        endpoints = load(manifest, directory)
    except NotReady as problem:
        # A failed import has a traceback worth reading; a missing or altered file does not.
        log.error("not ready: %s", problem, exc_info=problem.__cause__)
        return Startup(manifest, None, str(problem))
    seconds = round(time.perf_counter() - started, 3)
    fields = {"artifacts": sorted(ARTIFACTS.values()), "seconds": seconds}
    log.info("ready: artifacts loaded and checked", extra={"fields": fields})
    return Startup(manifest, endpoints)


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise NotReady(f"the build's manifest {path} cannot be read ({error.strerror})") from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as error:
        raise NotReady(f"{path} is not valid JSON ({error})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("artifacts"), dict):
        raise NotReady(f"{path} is not an nbops build manifest: it has no artifacts table")
    return manifest


def load(manifest: dict[str, Any], directory: Path) -> ModuleType:
    """Every artifact the serve functions read, checked; then the module that holds them."""
    for key in sorted(set(ARTIFACTS.values())):
        _values[key] = _checked(key, manifest["artifacts"].get(key), directory)
    _use_run_parameters(manifest.get("parameters") or {})
    try:
        return importlib.import_module(".endpoints", __package__)
    except Exception as error:
        message = f"the serve cells raised {type(error).__name__} when imported: {error}"
        raise NotReady(message) from error


def loaded(key: str) -> Any:
    """The checked value of artifact `key`: service.endpoints reads its artifacts here."""
    if key not in _values:
        raise NotReady(f"artifact {key} was read before it was loaded; start the service app")
    return _values[key]


def _checked(key: str, entry: Any, directory: Path) -> Any:
    """The value stored for `entry`, if the file's sha256 is the one nbops.json records."""
    if not isinstance(entry, dict) or not {"sha256", "format"} <= entry.keys():
        raise NotReady(f"artifact {key} is not listed in nbops.json; build again with nbops build")
    expected, fmt = str(entry["sha256"]), str(entry["format"])
    path = ArtifactStore(directory).path(expected, fmt)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise NotReady(f"artifact {key} is missing: {path} ({error.strerror})") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise NotReady(
            f"artifact {key} was altered: {path} has sha256 {actual}, nbops.json records {expected}"
        )
    try:
        return deserialise(data, fmt)
    except Exception as error:
        message = f"artifact {key} cannot be loaded from {path}: {type(error).__name__}: {error}"
        raise NotReady(message) from error


def _use_run_parameters(values: dict[str, Any]) -> None:
    """The parameter values of the run the artifacts came from, for code that reads them.

    The setup and serve cells read parameters when they are imported, which happens after this.
    """
    from pipeline import parameters

    for name, value in values.items():
        if name in parameters.PARAMETERS:
            parameters.PARAMETERS[name] = value
            setattr(parameters, name, value)
