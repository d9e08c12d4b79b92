"""`nbops build`: generated code, the run's artifacts, passing tests and a manifest, moved into
place whole, so a failed build leaves the previous one untouched."""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbops import __version__
from nbops.errors import NbopsError
from nbops.model.examples import smoke_example
from nbops.model.analysis import analyse
from nbops.model.pipeline import Endpoint, Pipeline
from nbops.run.home import Home
from nbops.run.executors import Executor
from nbops.run.runner import Listener, cell_output_path, run_pipeline
from nbops.run.state import RunRecord, StoredArtifact
from nbops.run.store import ArtifactStore

MANIFEST = "nbops.json"
MANIFEST_VERSION = 1
# What `nbops build --check` compares: everything generated from the notebook alone.
# Not requirements.lock: its versions say which environment the run's artifacts were made in
# (a model pickled by scikit-learn 1.5 loads with 1.5), a fact about the run like the artifacts'
# hashes, so a CI machine with other versions installed must not call the build stale. A change
# to what the notebook imports changes the notebook's hash, which the check reports anyway.
GENERATED = ("pipeline", "service", "tests", "ruff.toml", "Dockerfile", ".dockerignore", "k8s")
RUN_FILES = ("artifacts.json", "parameters.json")  # written per run: not generated code
TESTS_STORE = Path("tests") / "artifacts"  # what only the tests read: the run's, not code
PYTEST = (sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider")


class BuildFailed(NbopsError):
    """The build's own tests failed, or the build could not be written; the old one stays."""

    exit_code = 1

    def __init__(self, message: str, *, fix: str = "", where: str = "", details: str = "") -> None:
        self.details = details
        super().__init__(message, fix=fix, where=where)


@dataclass(frozen=True)
class BuildResult:
    path: Path
    manifest: dict[str, Any]
    run: RunRecord | None
    tests_output: str


def default_build_dir(pipeline: Pipeline) -> Path:
    return Path("build") / pipeline.notebook.name


def build(
    pipeline: Pipeline,
    *,
    out: Path,
    parameters: dict[str, Any] | None = None,
    run: bool = True,
    home: Home | None = None,
    listener: Listener | None = None,
    executor: Executor | None = None,
    step_timeout: float | None = None,
) -> BuildResult:
    """Generate, run (cached), bundle, test and describe the build, then move it into place."""
    home = home or Home.default()
    record = (
        # The build runs the generated tests itself, with the test cells' names.
        run_pipeline(
            pipeline,
            parameters=parameters,
            home=home,
            listener=listener,
            tests=False,
            executor=executor,
            step_timeout=step_timeout,
        )
        if run
        else _latest_run(pipeline, home)
    )
    # A change in place a run saw (and the code does not show) moves where values come from.
    observed = home.observed_changes(pipeline.notebook.path)
    if observed:
        pipeline = analyse(pipeline.notebook, observed)
    with _staging(out) as staging:
        from nbops.build.codegen import write_pipeline
        from nbops.build.packaging import write_packaging
        from nbops.build.reference import write_profiles
        from nbops.build.service import write_service

        write_pipeline(pipeline, staging)
        write_service(pipeline, staging)
        artifacts = _bundle(pipeline, record, home, staging) if record else {}
        if record and any(e.batch for e in pipeline.endpoints):
            _check_batch_functions(pipeline, _manifest(pipeline, record, artifacts, staging), staging)
        tests_output = _run_tests(pipeline, staging) if record and (staging / "tests").is_dir() else ""
        manifest = _manifest(pipeline, record, artifacts, staging)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if record and any(e.reference for e in pipeline.endpoints):
            manifest = _with_references(manifest, write_profiles(pipeline, record, home, staging))
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        write_packaging(pipeline, staging)  # after the manifest: it reads the artifacts' formats
        if record:
            _write_report(pipeline, record, home, staging / "report.html")
        _swap_into_place(staging, out)
    return BuildResult(out, manifest, record, tests_output)


def _check_batch_functions(pipeline: Pipeline, manifest: dict[str, Any], staging: Path) -> None:
    """Before the smoke tests, whose failure would say less: each batch function called with
    its example's items, against a manifest kept outside the build."""
    from nbops.build.batchable import check_batch_functions

    with tempfile.TemporaryDirectory(prefix="nbops-batch-") as tmp:
        path = Path(tmp) / MANIFEST
        path.write_text(json.dumps(manifest))
        check_batch_functions(pipeline, staging, path)


def _latest_run(pipeline: Pipeline, home: Home) -> RunRecord | None:
    """With --no-run: the newest successful run of this very notebook, if there is one."""
    latest = home.db().latest_run(str(Path(pipeline.notebook.path).resolve()))
    return latest if latest and latest.notebook_sha256 == pipeline.notebook.sha256 else None


@contextmanager
def _staging(out: Path) -> Iterator[Path]:
    """A temp folder beside the target (same filesystem, so the final rename is atomic)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _swap_into_place(staging: Path, out: Path) -> None:
    old = out.parent / f".{out.name}.old-{secrets.token_hex(3)}"
    if out.exists():
        os.replace(out, old)
    try:
        os.replace(staging, out)
    except OSError:
        if old.exists():
            os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def served(pipeline: Pipeline) -> dict[str, tuple[str, str]]:
    """'<step>.<name>' -> (step, name) for every value the serve functions read: the service's
    artifacts, and all the service folder and its image carry."""
    pairs = [pair for endpoint in pipeline.endpoints for pair in endpoint.inputs]
    return {f"{producer}.{name}": (producer, name) for name, producer in pairs}


def tested(pipeline: Pipeline) -> dict[str, tuple[str, str]]:
    """'<step>.<name>' -> (step, name) for every value the test cells read."""
    pairs = [pair for test in pipeline.tests for pair in test.inputs]
    return {f"{producer}.{name}": (producer, name) for name, producer in pairs}


def _bundle(
    pipeline: Pipeline, record: RunRecord, home: Home, staging: Path
) -> dict[str, dict[str, Any]]:
    """Copy what the service reads into artifacts/ and what only the tests read into
    tests/artifacts/, each in the store's own layout; the manifest lists the service's."""
    index = _copied(served(pipeline), record, home, staging / "artifacts", staging)
    if (staging / "tests").is_dir():
        only_tested = {k: v for k, v in tested(pipeline).items() if k not in index}
        tests = staging / "tests"
        copied = _copied(only_tested, record, home, tests / "artifacts", staging)
        # The test cells' values, and the service's for its smoke tests.
        tests_index = {
            k: {"sha256": v["sha256"], "format": v["format"]}
            for k, v in sorted({**index, **copied}.items())
        }
        (tests / "artifacts.json").write_text(json.dumps(tests_index, indent=2) + "\n")
        # The tests check the run's values, so they see the parameters that run used.
        parameters = json.dumps(record.parameters, indent=2, default=repr)
        (tests / "parameters.json").write_text(parameters + "\n")
    return index


def _copied(
    needed: dict[str, tuple[str, str]], record: RunRecord, home: Home, store: Path, staging: Path
) -> dict[str, dict[str, Any]]:
    """Copy each needed artifact of the run into the store at `store`; their manifest entries."""
    outputs = {step.name: step.outputs for step in record.steps}
    index: dict[str, dict[str, Any]] = {}
    for key, (producer, name) in sorted(needed.items()):
        stored: StoredArtifact = outputs[producer][name]
        # Checked bytes, from a folder or a shared (remote) store alike.
        data = home.store.read(stored.sha256, stored.format)
        target = ArtifactStore(store).path(stored.sha256, stored.format)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        index[key] = {
            **stored.as_dict(),
            "file": str(target.relative_to(staging)),
            "bytes": target.stat().st_size,
        }
    return index


def _run_tests(pipeline: Pipeline, staging: Path) -> str:
    """The generated tests, run by pytest in a child process against the bundled artifacts."""
    env = {k: v for k, v in os.environ.items() if k != "NBOPS_STORE"}
    done = subprocess.run(
        # An empty config and rootdir keep any pytest settings of folders above the build out;
        # -rfE lists each failed test on a line of its own, which the error message reads.
        [*PYTEST, "-rfE", "-c", os.devnull, "--rootdir", ".", "tests"],
        cwd=staging,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise tests_failed(pipeline, (done.stdout + done.stderr).strip())
    return done.stdout.strip()


SMOKE_TESTS = "tests/test_service_smoke.py"
# The generated test of a test cell is named for the cell: test_cell_<index>_<step>.
TEST_CELL = re.compile(r"::test_cell_(?P<index>\d+)_")
FAILED_TEST = re.compile(r"^(?:FAILED|ERROR) (?P<test>\S+)", re.MULTILINE)


def tests_failed(pipeline: Pipeline, output: str) -> BuildFailed:
    """The failure of the generated tests, naming the cells to fix: the test cells whose tests
    failed, or the serve cells when the service's smoke tests did."""
    failed = FAILED_TEST.findall(output)
    notebook = pipeline.notebook.display_name
    cells = sorted({int(m["index"]) for test in failed if (m := TEST_CELL.search(test))})
    smoke = [test.partition("::")[2] for test in failed if test.startswith(SMOKE_TESTS)]
    if smoke and not cells:
        return _smoke_failed(pipeline, smoke, output)
    if cells and not smoke:
        plural = "s" if len(cells) > 1 else ""
        return BuildFailed(
            f"the generated test{plural} of the test cell{plural} failed, "
            "so the build was not replaced.",
            where=f"{notebook} {_cells(cells)} [test]",
            fix=f"Fix the test cell{plural} or the steps {'they check' if plural else 'it checks'} "
            "(the test output is above), then build again.",
            details=output,
        )
    return BuildFailed(
        "the generated tests failed, so the build was not replaced.",
        where=notebook,
        fix="The test output above names the failing tests (tests/test_<step>.py test the "
        "test cells, tests/test_service_smoke.py the serve cells); fix those cells, then "
        "build again.",
        details=output,
    )


def _smoke_failed(pipeline: Pipeline, tests: list[str], output: str) -> BuildFailed:
    """The service's smoke tests failed: it did not start, or an example was not answered."""
    serve = sorted({ref.index for endpoint in pipeline.endpoints for ref in endpoint.cells})
    where = f"{pipeline.notebook.display_name} {_cells(serve)} [serve]"
    if any(test.startswith("test_the_service_lives") for test in tests):
        return BuildFailed(
            "the service did not get ready in its smoke tests, so the build was not replaced.",
            where=where,
            fix="When the service starts it loads its artifacts and runs the serve cells, and "
            "that failed (the reason is in the output above). Fix the serve cells, or move what "
            "is not a definition to a test or skip cell, then build again.",
            details=output,
        )
    examples = {e.route: smoke_example(pipeline, e) for e in pipeline.endpoints}
    refused = {
        route: example
        for route, example in examples.items()
        if example is not None and any(f"[/{route}]" in test for test in tests)
    }
    if refused:
        calls = ", ".join(f"/{route} (cell {e.cell.index})" for route, e in refused.items())
        first = sorted({e.cells[0].index for e in pipeline.endpoints if e.route in refused})
        return BuildFailed(
            f"the service's smoke tests failed: the example request of {calls} was not "
            "answered 200, so the build was not replaced.",
            where=f"{pipeline.notebook.display_name} {_cells(first)} [serve]",
            fix="Fix the serve function, or its example call, so that the call works as the "
            "notebook makes it (the error is in the output above), then build again.",
            details=output,
        )
    return BuildFailed(
        "the service's smoke tests failed, so the build was not replaced.",
        where=where,
        fix="Fix the serve cells (the failing smoke test is in the output above), then build "
        "again.",
        details=output,
    )


def _cells(indexes: list[int]) -> str:
    return ("cell " if len(indexes) == 1 else "cells ") + ", ".join(map(str, indexes))


def _manifest(
    pipeline: Pipeline,
    record: RunRecord | None,
    artifacts: dict[str, dict[str, Any]],
    staging: Path,
) -> dict[str, Any]:
    notebook = pipeline.notebook
    return {
        "schema_version": MANIFEST_VERSION,
        "name": notebook.name,
        "build_id": _build_id(notebook.sha256, record, staging),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "nbops_version": __version__,
        "notebook": {"path": notebook.path, "sha256": notebook.sha256},
        "run_id": record.run_id if record else None,
        "parameters": record.parameters
        if record
        else {p.name: p.default for p in pipeline.parameters},
        "steps": [
            {"name": s.name, "cells": [c.as_dict() for c in s.cells], "outputs": list(s.outputs)}
            for s in pipeline.steps
        ],
        "artifacts": artifacts,
        "endpoints": [_manifest_endpoint(pipeline, e) for e in pipeline.endpoints],
        "metrics": record.metrics if record else {},
    }


def _manifest_endpoint(pipeline: Pipeline, endpoint: Endpoint) -> dict[str, Any]:
    example = smoke_example(pipeline, endpoint)
    return {
        "name": endpoint.name,
        "route": endpoint.route,
        "cells": [c.as_dict() for c in endpoint.cells],
        "artifacts": {name: f"{producer}.{name}" for name, producer in endpoint.inputs},
        # A batch function's route micro-batches one item per request.
        "batch": endpoint.batch,
        # The example request the build's smoke tests sent: a deploy sends it too.
        "example": example.body if example else None,
        "example_cell": example.cell.as_dict() if example else None,
    }


def _with_references(
    manifest: dict[str, Any], references: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The manifest with each profiled endpoint's `reference` entry (written once the service,
    which reads the manifest, has made the profiles)."""
    endpoints = [
        {**e, "reference": references[e["route"]]} if e["route"] in references else e
        for e in manifest["endpoints"]
    ]
    return {**manifest, "endpoints": endpoints}


def _defaults(pipeline: Pipeline) -> dict[str, Any]:
    return {p.name: p.default for p in pipeline.parameters}


def _build_id(notebook_sha: str, record: RunRecord | None, staging: Path) -> str:
    """Same notebook, same run, same generated code: same id."""
    digest = hashlib.sha256(notebook_sha.encode())
    digest.update((record.run_id if record else "").encode())
    for path in sorted(_generated_files(staging)):
        digest.update(str(path.relative_to(staging)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _generated_files(root: Path) -> list[Path]:
    files: list[Path] = []
    tests_store = root / TESTS_STORE
    for name in GENERATED:
        path = root / name
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files += [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return [p for p in files if p.name not in RUN_FILES and tests_store not in p.parents]


def _write_report(pipeline: Pipeline, record: RunRecord, home: Home, target: Path) -> None:
    """The report of the run the build came from: the notebook with each cell's output."""
    import nbformat

    from nbops.ci.report import ReportRun, write_report

    node = nbformat.reads(Path(pipeline.notebook.path).read_text(), as_version=4)  # type: ignore[no-untyped-call]
    run_dir = home.log_dir(record.run_id)
    cached = {s.name for s in record.steps if s.status == "cached"}
    for step in pipeline.steps:
        for ref in step.cells:
            cell = node.cells[ref.index]
            output = cell_output_path(run_dir, ref)
            text = (
                f"(cached: step {step.name!r} did not change since an earlier run)\n"
                if step.name in cached
                else (output.read_text() if output.is_file() else "")
            )
            new_output = nbformat.v4.new_output
            stream = new_output("stream", name="stdout", text=text)  # type: ignore[no-untyped-call]
            cell.outputs = [stream] if text else []
    summary = ReportRun(
        title=pipeline.notebook.display_name,
        parameters=record.parameters,
        metrics=record.metrics,
        details=f"nbops build from run {record.run_id}",
    )
    write_report(target, node, summary)


def check_build(pipeline: Pipeline, out: Path) -> list[str]:
    """Files of a committed build that regenerating from the notebook would change."""
    from nbops.build.codegen import write_pipeline
    from nbops.build.packaging import write_packaging
    from nbops.build.service import write_service

    if not (out / MANIFEST).is_file():
        return [f"{out / MANIFEST} (missing: there is no build here)"]
    stale: list[str] = []
    manifest = json.loads((out / MANIFEST).read_text())
    if manifest.get("notebook", {}).get("sha256") != pipeline.notebook.sha256:
        stale.append(f"{MANIFEST} (built from another version of the notebook)")
    with tempfile.TemporaryDirectory(prefix="nbops-check-") as tmp:
        fresh = Path(tmp)
        write_pipeline(pipeline, fresh)
        write_service(pipeline, fresh)
        write_packaging(pipeline, fresh, recorded=out)  # as built: its manifest and its Python
        expected = {p.relative_to(fresh) for p in _generated_files(fresh)}
        present = {p.relative_to(out) for p in _generated_files(out)}
        for relative in sorted(expected | present):
            a, b = fresh / relative, out / relative
            if not (a.is_file() and b.is_file() and filecmp.cmp(a, b, shallow=False)):
                stale.append(str(out / relative))
    return stale
