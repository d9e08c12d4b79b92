"""Serve functions of the regression service: cell 12 of regression.ipynb, as written.

The service imports this module once, at start-up, after `service.artifacts` has loaded the
values below from the build's artifacts and checked each against its sha256 in nbops.json.
Parameters have the values of the run the artifacts came from.

Generated from regression.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

from pipeline.shared import pd

from .artifacts import loaded

# What the steps made in the run this build came from, by "<step>.<name>".
feature_names = loaded("train.feature_names")
model = loaded("train.model")


# cell 12 (id regression-12)
def predict(features: dict[str, float]) -> float:
    """Predict the disease progression score of one patient.

    `features` maps the baseline variables (age, sex, bmi, bp, s1 to s6, scaled
    as in scikit-learn's dataset) to values; a missing variable counts as 0.
    """
    row = pd.DataFrame([features]).reindex(columns=feature_names, fill_value=0.0)
    return float(model.predict(row)[0])
