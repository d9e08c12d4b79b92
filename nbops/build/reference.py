"""Profiles of the endpoints tagged `reference=`, made at build time against the built service.

The serve function is called as the service calls it: a child process imports the staged
service (its artifacts loaded and checked), so the build's own process never imports user code.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from nbops.model.examples import smoke_example
from nbops.model.pipeline import Endpoint, Pipeline
from nbops.run.home import Home
from nbops.run.state import RunRecord

PROFILE = "profile.json"
BATCH = 64  # items per call of a batch function: the service's NBOPS_MAX_BATCH_SIZE default


def profile_file(pipeline: Pipeline, endpoint: Endpoint) -> str:
    """`profile.json`, or one file per route when several endpoints have a reference."""
    referenced = [e for e in pipeline.endpoints if e.reference]
    return PROFILE if len(referenced) == 1 else f"profile-{endpoint.route.replace('/', '-')}.json"


def call_plan(pipeline: Pipeline, endpoint: Endpoint) -> dict[str, Any]:
    """Which reference columns are the endpoint's input fields, and how a row is passed: as
    one record (`predict(features: dict)`, its fields the keys of the example request's dict,
    else every column) or as keyword arguments named for the fields."""
    arguments = endpoint.request_arguments()
    plain = [a for a in arguments if a.kind in ("positional_or_keyword", "keyword_only")]
    example = smoke_example(pipeline, endpoint)
    if len(plain) == 1:
        value = example.body.get(plain[0].name) if example else None
        if isinstance(value, dict) or (value is None and "dict" in (plain[0].annotation or "")):
            fields = list(value) if isinstance(value, dict) else None
            return {"fields": fields, "argument": plain[0].name}
    return {"fields": [a.name for a in plain], "argument": None}


def write_profiles(
    pipeline: Pipeline, record: RunRecord, home: Home, staging: Path
) -> dict[str, dict[str, Any]]:
    """route -> the manifest's `reference` entry, for each endpoint with a reference."""
    found: dict[str, dict[str, Any]] = {}
    outputs = {step.name: step.outputs for step in record.steps}
    for endpoint in pipeline.endpoints:
        if not (endpoint.reference and endpoint.reference_step):
            continue
        stored = outputs[endpoint.reference_step][endpoint.reference]
        # Absolute: the child writes it from inside the staging folder.
        target = (staging / profile_file(pipeline, endpoint)).resolve()
        with tempfile.TemporaryDirectory(prefix="nbops-reference-") as tmp:
            rows = Path(tmp) / "rows"
            rows.write_bytes(home.store.read(stored.sha256, stored.format))
            plan = {**call_plan(pipeline, endpoint), "function": endpoint.name}
            plan["batch"] = endpoint.batch
            plan |= {"rows": str(rows), "format": stored.format, "out": str(target)}
            _profile_in_child(plan, staging)
        found[endpoint.route] = {
            "artifact": f"{endpoint.reference_step}.{endpoint.reference}",
            "profile": target.name,
            "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
        }
    return found


def _profile_in_child(plan: dict[str, Any], staging: Path) -> None:
    from nbops.build.builder import BuildFailed

    env = {k: v for k, v in os.environ.items() if k != "NBOPS_STORE"}
    done = subprocess.run(
        [sys.executable, "-m", "nbops.build.reference", json.dumps(plan)],
        cwd=staging,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BuildFailed(
            f"the reference profile of {plan['function']!r} could not be made, so the build "
            "was not replaced.",
            fix="The reference's rows must hold the endpoint's input fields, and the serve "
            "function must answer each of them (the error is above).",
            details=(done.stdout + done.stderr).strip(),
        )


def main(plan: dict[str, Any]) -> None:
    """In the child, inside the staged build: load the service, profile, write the file."""
    from nbops.build.profile import reference_profile
    from nbops.run.store import deserialise

    staging = Path.cwd()
    sys.path.insert(0, str(staging))
    from service.artifacts import start  # type: ignore[import-not-found]

    startup = start(staging / "nbops.json", staging / "artifacts")
    if startup.endpoints is None:
        raise SystemExit(f"the service did not start: {startup.reason}")
    function = getattr(startup.endpoints, plan["function"])
    argument = plan["argument"]

    def call(row: dict[str, Any]) -> Any:
        return function(**{argument: row}) if argument else function(**row)

    def calls(rows: list[dict[str, Any]]) -> list[Any]:
        """A batch function on the rows (or their one field), in batches as the service makes
        them at most: one call per batch rather than one per row."""
        items = [row if argument else row[plan["fields"][0]] for row in rows]
        return [r for at in range(0, len(items), BATCH) for r in function(items[at : at + BATCH])]

    rows = deserialise(Path(plan["rows"]).read_bytes(), plan["format"])
    if plan.get("batch"):
        profile = reference_profile(rows, plan["fields"], calls=calls)
    else:
        profile = reference_profile(rows, plan["fields"], call)
    Path(plan["out"]).write_text(profile.to_json())


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
