"""churn's model served by BentoML with adaptive batching, as its docs show a batchable API.

It loads the build's model and feature columns through its nbops.json (as handwritten_app.py
does) and applies the notebook's feature engineering to every customer of a batch in one
DataFrame. It runs in BentoML's own venv (bentoml_server.py), never in .venv:
CHURN_BUILD=build/churn bentoml serve bentoml_churn:Churn --working-dir benchmarks --port 3000

A batchable BentoML API takes a list per request and concatenates the lists of the requests
it gathers, so a request is `{"features": [{...}]}` and its answer a list of one prediction.
"""

# It is imported only in BentoML's venv; .venv's mypy has no bentoml to read.
# mypy: disable-error-code="import-not-found,untyped-decorator"

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import bentoml
import joblib
import pandas as pd
from pydantic import BaseModel

BUILD = Path(os.environ.get("CHURN_BUILD", "build/churn"))
MAX_BATCH_SIZE = int(os.environ.get("CHURN_MAX_BATCH_SIZE", "64"))
# BentoML's own default. In BentoML this is a deadline, not a wait: its dispatcher sheds a
# queued request with 503 once it expects the request to be answered later than this, and
# decides how long to wait for a batch to fill from the call cost it observes. Any value above
# the slowest answer of a run batches the same; nbops's 5 ms here would shed requests at c=32.
MAX_LATENCY_MS = int(os.environ.get("CHURN_MAX_LATENCY_MS", "60000"))


def load_artifact(name: str) -> Any:
    """An artifact of the build by its manifest name, e.g. `train.model`."""
    manifest = json.loads((BUILD / "nbops.json").read_text(encoding="utf-8"))
    entry = manifest["artifacts"][name]
    path = BUILD / entry["file"]
    if entry["format"] == "joblib":
        return joblib.load(path)
    with path.open("rb") as file:
        return pickle.load(file)  # our own build's file, written by nbops


class Customer(BaseModel):
    tenure_months: int
    monthly_charges: float
    support_calls: int
    contract: str


class Prediction(BaseModel):
    churn_probability: float
    churn: bool


# workers=1 and threads=1 are BentoML's defaults, written out: one process, as every other
# server here; metrics and the access log stay on, as BentoML ships them.
@bentoml.service(workers=1, threads=1)
class Churn:
    def __init__(self) -> None:
        self.model = load_artifact("train.model")
        self.feature_columns = load_artifact("features.feature_columns")

    @bentoml.api(
        route="/predict",
        batchable=True,
        max_batch_size=MAX_BATCH_SIZE,
        max_latency_ms=MAX_LATENCY_MS,
    )
    def predict(self, features: list[Customer]) -> list[Prediction]:
        rows = pd.DataFrame([customer.model_dump() for customer in features])
        tenure = rows["tenure_months"].clip(lower=1)
        rows["charges_per_month_of_tenure"] = rows["monthly_charges"] / tenure
        rows["has_support_calls"] = (rows["support_calls"] > 0).astype(int)
        rows = pd.get_dummies(rows, columns=["contract"], dtype=int)
        rows = rows.reindex(columns=self.feature_columns, fill_value=0)
        probabilities = self.model.predict_proba(rows)[:, 1]
        return [Prediction(churn_probability=float(p), churn=bool(p >= 0.5)) for p in probabilities]
