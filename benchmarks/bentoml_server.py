"""BentoML with adaptive batching, from a venv of its own, serving churn's model
(`bentoml_churn.py`) as POST /predict.

BentoML pins its own web stack (starlette, uvicorn, opentelemetry), so it stays out of .venv;
its venv holds the notebook's libraries at .venv's exact versions, so the build's pickled model
loads and predicts the same numbers at the same speed.
"""

from __future__ import annotations

from pathlib import Path

import venvs

BENTOML = "bentoml==1.4.40"
SAME_AS_MAIN = ("numpy", "pandas", "scikit-learn", "scipy", "joblib", "threadpoolctl")
HERE = Path(__file__).resolve().parent
SERVICE = "bentoml_churn:Churn"


def requirements() -> list[str]:
    return [BENTOML, *venvs.same_as_main(SAME_AS_MAIN)]


def environment() -> Path:
    """The BentoML venv's `bentoml`, made first if it is not in the cache."""
    return venvs.cached("bentoml", requirements()) / "bin" / "bentoml"


def command(program: Path, port: int) -> list[str]:
    """`bentoml serve` of the churn service on 127.0.0.1:`port` (one worker, its default)."""
    return [
        str(program),
        "serve",
        SERVICE,
        "--working-dir",
        str(HERE),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


def isolated_environment(base: dict[str, str], build: Path, home: Path) -> dict[str, str]:
    """`base` with the build to serve, BentoML's home (its model store and config) in `home`
    rather than the user's ~/bentoml, and no usage reports sent from a benchmark."""
    env = {k: v for k, v in base.items() if not k.startswith("BENTOML_")}
    env["CHURN_BUILD"] = str(build)
    env["BENTOML_HOME"] = str(home)
    env["BENTOML_DO_NOT_TRACK"] = "True"
    return env
