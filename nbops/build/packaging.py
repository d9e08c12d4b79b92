"""Packaging a build: requirements.lock, Dockerfile, .dockerignore and k8s/ manifests.

`render_packaging` is pure: the model, the Python environment and the build's manifest in, file
texts out; the templates under templates/packaging/ write every line. `current_environment`
reads the installed distributions, and `write_packaging` puts the two together for a build.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import json
import platform
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbops import __version__
from nbops.templating import new_environment
from nbops.model.diagnostic import Diagnostic, Severity
from nbops.model.pipeline import CellRef, Pipeline

if TYPE_CHECKING:
    import jinja2

LOCK = "requirements.lock"
MANIFEST = "nbops.json"
# The files each build gets, and the template each is rendered from.
PACKAGING_FILES = {
    LOCK: "packaging/requirements.lock.j2",
    "Dockerfile": "packaging/Dockerfile.j2",
    ".dockerignore": "packaging/dockerignore.j2",
    "k8s/deployment.yaml": "packaging/k8s/deployment.yaml.j2",
    "k8s/service.yaml": "packaging/k8s/service.yaml.j2",
    "k8s/hpa.yaml": "packaging/k8s/hpa.yaml.j2",
}
# What the generated service imports. starlette comes with fastapi, but service/ imports it
# directly, so it is pinned as the service was tested with it.
SERVICE_NEEDS = (
    "fastapi",
    "starlette",
    "anyio",  # service/routes.py imports it: a long request must not block shutdown
    "uvicorn",
    "pydantic",
    "pydantic-settings",
    "prometheus-client",
)
# What pipeline/store.py imports to load each artifact format; pickle needs the stdlib alone.
FORMAT_NEEDS: Mapping[str, tuple[str, ...]] = {
    "npy": ("numpy",),
    "parquet": ("pandas", "pyarrow"),
    "joblib": ("joblib",),
    "cloudpickle": ("cloudpickle",),
    "pickle": (),
}
PORT = 8000  # where `uvicorn service.main:app` listens in the image
UID = 10001  # numeric, so Kubernetes can verify runAsNonRoot without reading /etc/passwd
# The pods' autoscaling (k8s/hpa.yaml): between these replicas, towards this CPU utilization
# of each pod's request.
AUTOSCALING = {"min_replicas": 2, "max_replicas": 10, "cpu_utilization": 70, "cpu_request": "500m"}
DNS_LABEL_MAX = 63
PYTHON_OF_LOCK = re.compile(r"with Python (\d+(?:\.\d+)+)")


@dataclass(frozen=True)
class Environment:
    """The Python a build is made with: its version, and the installed distributions.

    `providers` maps a top-level import name to the distributions that install it (as
    `importlib.metadata.packages_distributions()` does); `versions` maps a distribution's
    canonical name to its installed version.
    """

    python: str
    providers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    versions: Mapping[str, str] = field(default_factory=dict)

    @property
    def python_minor(self) -> str:
        return ".".join(self.python.split(".")[:2])

    def distributions(self, module: str) -> tuple[str, ...]:
        """The canonical names of the distributions providing `module`, sorted; () if none.

        An editable install often leaves no file record for packages_distributions() to
        map, so a distribution named like the module counts as providing it.
        """
        names = {canonical(name) for name in self.providers.get(module, ())}
        if not names and canonical(module) in self.versions:
            names = {canonical(module)}
        return tuple(sorted(names))


@dataclass(frozen=True)
class ModuleImport:
    """The first place the shipped code imports a top-level module."""

    module: str
    cell: CellRef
    line: int
    tag: str


@dataclass(frozen=True)
class Pin:
    """One line of the lock: a distribution, its installed version (None when not installed
    where the build ran) and why the build needs it."""

    name: str
    version: str | None
    reasons: tuple[str, ...]

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}" if self.version else self.name


@dataclass(frozen=True)
class Requirements:
    pins: tuple[Pin, ...]
    unresolved: tuple[ModuleImport, ...]  # imports no installed distribution provides


def canonical(name: str) -> str:
    """A distribution name normalised as PEP 503 says: lower case, runs of -_. as one '-'."""
    return re.sub(r"[-_.]+", "-", name).lower()


def dns_name(notebook_name: str) -> str:
    """The notebook's name as a DNS-1035 label, which Services need: lower-case letters,
    digits and '-', starting with a letter, at most 63 characters."""
    name = re.sub(r"[^a-z0-9]+", "-", notebook_name.lower()).strip("-")
    if not name[:1].isalpha():
        name = f"nb-{name}".rstrip("-")
    return name[:DNS_LABEL_MAX].rstrip("-")


def label_value(text: str) -> str:
    """Text as a Kubernetes label value: [A-Za-z0-9_.-], alphanumeric at both ends, 63 long."""
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:DNS_LABEL_MAX]
    return value.strip("-_.")


# what the shipped code imports


def imported_modules(pipeline: Pipeline) -> tuple[ModuleImport, ...]:
    """Top-level modules imported by the code the image ships, first import of each.

    That code is the setup, step, metrics and serve cells (pipeline/ and service/); test
    cells stay out, as tests/ does. Relative imports, `__future__` and the standard library
    need no distribution.
    """
    seen: dict[str, ModuleImport] = {}
    for ref, tag in _shipped_cells(pipeline):
        tree = pipeline.code(ref).python.tree
        for module, line in _imports(tree):
            if module not in seen and module not in sys.stdlib_module_names:
                seen[module] = ModuleImport(module, ref, line, tag)
    return tuple(seen.values())


def _shipped_cells(pipeline: Pipeline) -> list[tuple[CellRef, str]]:
    """Each shipped cell with the tag of its section, in notebook order."""
    cells = [(ref, "setup") for ref in pipeline.setup]
    cells += [(ref, f"step:{step.name}") for step in pipeline.steps for ref in step.cells]
    cells += [(ref, "metrics") for ref in pipeline.metrics.cells]
    cells += [(ref, f"serve:{e.route}") for e in pipeline.endpoints for ref in e.cells]
    return sorted(cells, key=lambda cell: cell[0].index)


def _imports(tree: ast.Module) -> list[tuple[str, int]]:
    """(top-level module, line) for every absolute import, nested ones included, by line."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name.partition(".")[0], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module.partition(".")[0], node.lineno))
    return sorted(found, key=lambda item: item[1])


# the lock


def requirements(
    pipeline: Pipeline, environment: Environment, formats: frozenset[str] = frozenset()
) -> Requirements:
    """What the image installs: the distributions the shipped code imports, the service's
    needs and what loading the bundled artifacts' `formats` needs, pinned as installed."""
    reasons: dict[str, list[str]] = {}
    unresolved: list[ModuleImport] = []
    for site in imported_modules(pipeline):
        providers = environment.distributions(site.module)
        if not providers:
            unresolved.append(site)
        for name in providers:
            reasons.setdefault(name, []).append(f"import {site.module}")
    for name in SERVICE_NEEDS:
        reasons.setdefault(name, []).append("the service")
    for fmt in sorted(formats):
        for name in FORMAT_NEEDS.get(fmt, ()):
            reasons.setdefault(name, []).append(f"{fmt} artifacts")
    pins = (
        Pin(name, environment.versions.get(name), tuple(why))
        for name, why in sorted(reasons.items())
    )
    return Requirements(tuple(pins), tuple(unresolved))


def unresolved_diagnostics(pipeline: Pipeline, environment: Environment) -> tuple[Diagnostic, ...]:
    """A warning for each import the lock cannot pin, at the cell and line that imports it."""
    return tuple(_unresolved(site) for site in requirements(pipeline, environment).unresolved)


def _unresolved(site: ModuleImport) -> Diagnostic:
    module = site.module
    return Diagnostic(
        severity=Severity.WARNING,
        message=(
            f"'{module}' is imported but no installed distribution provides it, "
            f"so {LOCK} cannot pin it."
        ),
        fix=(
            f"If {module}.py (or the package {module}/) sits beside the notebook, copy it into "
            f"the build and the image; otherwise `pip install` the distribution providing "
            f"'{module}' and build again."
        ),
        cell_index=site.cell.index,
        cell_id=site.cell.id,
        line=site.line,
        tag=site.tag,
    )


# rendering


def render_packaging(
    pipeline: Pipeline, environment: Environment, manifest: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """requirements.lock, Dockerfile, .dockerignore and k8s/ as {path in the build: text}.

    `manifest` is the build's nbops.json: its artifacts' formats decide what the lock adds
    for loading them, its build id labels the deployment and tags the image.
    """
    context = _context(pipeline, environment, manifest or {})
    return {path: _render(template, context) for path, template in PACKAGING_FILES.items()}


def _context(
    pipeline: Pipeline, environment: Environment, manifest: Mapping[str, Any]
) -> dict[str, Any]:
    artifacts: Mapping[str, Any] = manifest.get("artifacts") or {}
    formats = frozenset(str(entry["format"]) for entry in artifacts.values())
    locked = requirements(pipeline, environment, formats)
    name = dns_name(pipeline.notebook.name)
    build_id = manifest.get("build_id")
    return {
        "name": name,
        "notebook": pipeline.notebook.display_name,
        "version": __version__,
        "python": environment.python,
        "python_minor": environment.python_minor,
        "pins": locked.pins,
        "width": max(len(pin.requirement) for pin in locked.pins),
        "unresolved": locked.unresolved,
        "artifacts": bool(artifacts),
        "build_id": build_id,
        "labels": _labels(name, build_id),
        "port": PORT,
        "uid": UID,
        **AUTOSCALING,
    }


def _labels(name: str, build_id: str | None) -> list[tuple[str, str]]:
    """The labels of every object and pod; only the name selects pods, as a Deployment's
    selector cannot change between versions while the build id does."""
    labels = [("app.kubernetes.io/name", name), ("app.kubernetes.io/managed-by", "nbops")]
    if build_id:
        labels.append(("nbops/build-id", label_value(build_id)))
    return [*labels, ("nbops/version", label_value(__version__))]


@functools.lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    return new_environment()


def _render(template: str, context: dict[str, Any]) -> str:
    text: str = _templates().get_template(template).render(context)
    return text


# the edges: the installed distributions, the build folder


def current_environment() -> Environment:
    """The Python running nbops and its installed distributions.

    When a distribution is installed twice on sys.path, the first wins, as for imports and
    `importlib.metadata.version`.
    """
    versions: dict[str, str] = {}
    for distribution in importlib.metadata.distributions():
        name = distribution.metadata["Name"]
        if name:  # a broken install can leave metadata without a name
            versions.setdefault(canonical(name), distribution.version)
    providers = {
        module: tuple(names)
        for module, names in importlib.metadata.packages_distributions().items()
    }
    return Environment(platform.python_version(), providers, versions)


def write_packaging(
    pipeline: Pipeline, build_dir: str | Path, *, recorded: str | Path | None = None
) -> tuple[Diagnostic, ...]:
    """Write the packaging files into `build_dir`; returns a warning per import left unpinned.

    They follow the nbops.json in `build_dir` and the environment running nbops. With
    `recorded` (what `nbops build --check` passes), that build's nbops.json and the Python
    its lock names are used instead, so a check run with another Python compares what the
    notebook decides, not which Python the checking machine has.
    """
    root = Path(build_dir)
    source = Path(recorded) if recorded is not None else root
    environment = current_environment()
    python = recorded_python(source)
    if python:
        environment = replace(environment, python=python)
    for relative, text in render_packaging(pipeline, environment, _manifest(source)).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return unresolved_diagnostics(pipeline, environment)


def recorded_python(build_dir: Path) -> str | None:
    """The Python version a build's requirements.lock says it was made with, if any."""
    lock = build_dir / LOCK
    if not lock.is_file():
        return None
    found = PYTHON_OF_LOCK.search(lock.read_text(encoding="utf-8"))
    return found.group(1) if found else None


def _manifest(build_dir: Path) -> dict[str, Any]:
    path = build_dir / MANIFEST
    if not path.is_file():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
