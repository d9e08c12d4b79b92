"""Deploy targets past one machine: Docker and Kubernetes, run only where the tool answers.

Where it does not, the user gets a clear message and the exact commands to run elsewhere; the
build already holds the Dockerfile and k8s/ manifests those commands use.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

# Prints one line for the user (the CLI passes its console; a plain print does too).
Say = Callable[[str], None]


def remote_deploy(
    where: str,
    build_dir: Path,
    *,
    name: str | None,
    port: int | None,
    say: Say = print,
    workers: int = 1,
) -> int:
    """Deploy a build with Docker or kubectl, or print what to run where they work; exit code.
    `workers` is the container's uvicorn worker processes (Docker only: pods scale instead)."""
    manifest = json.loads((build_dir / "nbops.json").read_text())
    name = name or _dns_name(manifest["name"])
    image = f"{name}:{manifest['build_id']}"
    if where == "docker":
        return _docker(build_dir, name, image, port or 8000, say, workers)
    return _kubernetes(build_dir, name, image, say)


def docker_commands(
    build_dir: Path, name: str, image: str, port: int, workers: int = 1
) -> list[list[str]]:
    run = ["docker", "run", "-d", "--name", name, "-p", f"{port}:8000", "-e", "NBOPS_API_KEY"]
    if workers > 1:
        # uvicorn reads its --workers from WEB_CONCURRENCY; the workers' metrics go to files
        # of their own in /tmp, so that /metrics adds them up.
        run += ["-e", f"WEB_CONCURRENCY={workers}", "-e", "PROMETHEUS_MULTIPROC_DIR=/tmp"]
    return [
        ["docker", "build", "-t", image, str(build_dir)],
        ["docker", "rm", "-f", name],
        [*run, image],
    ]


def kubernetes_commands(build_dir: Path, name: str, image: str) -> list[list[str]]:
    return [
        ["docker", "build", "-t", image, str(build_dir)],
        ["docker", "push", image],
        ["kubectl", "apply", "-f", str(build_dir / "k8s")],
        # The Deployment's rolling update (maxUnavailable 0) and readiness probe on /readyz keep
        # the old pods serving until new ones are ready: the same promise as the local target.
        ["kubectl", "rollout", "status", f"deployment/{name}", "--timeout=180s"],
    ]


def _docker(build_dir: Path, name: str, image: str, port: int, say: Say, workers: int) -> int:
    commands = docker_commands(build_dir, name, image, port, workers)
    problem = _tool_problem(["docker", "info"])
    if problem:
        return _explain(f"no Docker engine answers here ({problem})", commands, say)
    return _run_all(commands, say, ignore_failure_of=1)


def _kubernetes(build_dir: Path, name: str, image: str, say: Say) -> int:
    commands = kubernetes_commands(build_dir, name, image)
    problem = _tool_problem(["kubectl", "version", "--client=false", "--request-timeout=5s"])
    if problem:
        return _explain(f"kubectl cannot reach a cluster here ({problem})", commands, say)
    return _run_all(commands[2:], say)


def _tool_problem(argv: list[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return f"{argv[0]} is not installed"
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=15, check=False)
    except subprocess.TimeoutExpired:
        return f"`{' '.join(argv)}` did not answer in 15 s"
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return lines[-1] if lines else f"`{' '.join(argv)}` exited with {done.returncode}"
    return None


def _explain(why: str, commands: list[list[str]], say: Say) -> int:
    say(f"not deployed: {why}.")
    say("Run these where the tool works:")
    for command in commands:
        say(f"  {shlex.join(command)}")
    return 1


def _run_all(commands: list[list[str]], say: Say, ignore_failure_of: int | None = None) -> int:
    for index, command in enumerate(commands):
        say(f"$ {shlex.join(command)}")
        done = subprocess.run(command, check=False)
        if done.returncode != 0 and index != ignore_failure_of:
            return 1
    return 0


def _dns_name(name: str) -> str:
    """Container and Kubernetes names: lower-case letters, digits and dashes."""
    cleaned = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    return cleaned or "nbops-service"
