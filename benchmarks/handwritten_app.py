"""The FastAPI app a person would write by hand to serve the churn model: the practical limit.

It loads the build's model and feature columns through its nbops.json, copies the notebook's
`predict`, and has one route. Run it as
CHURN_BUILD=build/churn uvicorn handwritten_app:app --app-dir benchmarks
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel

BUILD = Path(os.environ.get("CHURN_BUILD", "build/churn"))


def load_artifact(name: str) -> Any:
    """An artifact of the build by its manifest name, e.g. `train.model`."""
    manifest = json.loads((BUILD / "nbops.json").read_text(encoding="utf-8"))
    entry = manifest["artifacts"][name]
    path = BUILD / entry["file"]
    if entry["format"] == "joblib":
        return joblib.load(path)
    with path.open("rb") as file:
        return pickle.load(file)  # our own build's file, written by nbops


model = load_artifact("train.model")
feature_columns = load_artifact("features.feature_columns")


class Customer(BaseModel):
    tenure_months: int
    monthly_charges: float
    support_calls: int
    contract: str


class PredictRequest(BaseModel):
    features: Customer


class Prediction(BaseModel):
    churn_probability: float
    churn: bool


app = FastAPI(title="churn (hand-written)")


# A plain `def`, as FastAPI's docs advise for blocking work: it runs in the thread pool.
@app.post("/predict")
def predict(request: PredictRequest) -> Prediction:
    row = pd.DataFrame([request.features.model_dump()])
    tenure = row["tenure_months"].clip(lower=1)
    row["charges_per_month_of_tenure"] = row["monthly_charges"] / tenure
    row["has_support_calls"] = (row["support_calls"] > 0).astype(int)
    row = pd.get_dummies(row, columns=["contract"], dtype=int)
    row = row.reindex(columns=feature_columns, fill_value=0)
    probability = float(model.predict_proba(row)[0, 1])
    return Prediction(churn_probability=probability, churn=probability >= 0.5)
