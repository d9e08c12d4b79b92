"""Generate the example notebooks in ``example_notebooks/``.

The notebooks are written without outputs or execution counts and with stable cell
ids, so regenerating them only changes what the sources below change.

    python scripts/make_examples.py          # (re)write the notebooks
    python scripts/make_examples.py --check  # exit 1 if a notebook is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from textwrap import dedent

import nbformat
from nbformat.notebooknode import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

OUT_DIR = Path(__file__).resolve().parent.parent / "example_notebooks"


def md(text: str) -> NotebookNode:
    return new_markdown_cell(dedent(text).strip("\n"))


def code(text: str, *tags: str) -> NotebookNode:
    cell = new_code_cell(dedent(text).strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def notebook(stem: str, cells: list[NotebookNode]) -> NotebookNode:
    for index, cell in enumerate(cells):
        cell.id = f"{stem}-{index:02d}"
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {
        "name": "python",
        "file_extension": ".py",
        "mimetype": "text/x-python",
        "nbconvert_exporter": "python",
        "pygments_lexer": "ipython3",
    }
    return nb


def churn() -> NotebookNode:
    return notebook(
        "churn",
        [
            md("""
            # Customer churn

            A random forest that predicts which customers will cancel. The data is simulated
            so the notebook runs anywhere, but the shape of the work is the real thing:
            load, engineer features, train, evaluate, then serve single predictions.
            """),
            md("## Parameters"),
            code(
                """
                n_rows = 5000  # customers to simulate
                n_estimators = 100  # trees in the forest
                max_depth = 8  # maximum depth of each tree
                test_size = 0.2  # fraction of customers held out for evaluation
                seed = 42  # random seed for the data and the model
                """,
                "parameters",
            ),
            md("## Setup"),
            code(
                """
                import numpy as np
                import pandas as pd
                from sklearn.ensemble import RandomForestClassifier
                from sklearn.metrics import accuracy_score, roc_auc_score
                from sklearn.model_selection import train_test_split

                CONTRACTS = ["monthly", "annual", "two_year"]


                def sigmoid(z):
                    return 1 / (1 + np.exp(-z))
                """,
                "setup",
            ),
            md("""
            ## Load

            One row per customer. Churn follows a logistic rule: short tenure, high
            charges, many support calls and a monthly contract all raise the odds.
            """),
            code(
                """
                rng = np.random.default_rng(seed)
                customers = pd.DataFrame(
                    {
                        "tenure_months": rng.integers(1, 73, size=n_rows),
                        "monthly_charges": rng.normal(70, 25, size=n_rows).clip(18, 120).round(2),
                        "support_calls": rng.poisson(1.5, size=n_rows),
                        "contract": rng.choice(CONTRACTS, size=n_rows, p=[0.55, 0.25, 0.20]),
                    }
                )
                contract_effect = {"monthly": 0.8, "annual": -0.6, "two_year": -1.6}
                churn_logit = (
                    -0.8
                    - 0.05 * customers["tenure_months"]
                    + 0.02 * (customers["monthly_charges"] - 70)
                    + 0.5 * customers["support_calls"]
                    + customers["contract"].map(contract_effect)
                    + rng.normal(0, 0.5, size=n_rows)
                )
                customers["churned"] = (rng.random(n_rows) < sigmoid(churn_logit)).astype(int)
                customers.head()
                """,
                "step:load",
            ),
            md("""
            ## Features

            Derived columns are added to `customers`, the contract is one-hot encoded,
            then the rows are split into train and test sets.
            """),
            code(
                """
                tenure = customers["tenure_months"].clip(lower=1)
                customers["charges_per_month_of_tenure"] = customers["monthly_charges"] / tenure
                customers["has_support_calls"] = (customers["support_calls"] > 0).astype(int)
                customers = pd.get_dummies(customers, columns=["contract"], dtype=int)
                """,
                "step:features",
            ),
            code("""
            feature_columns = [column for column in customers.columns if column != "churned"]
            X_train, X_test, y_train, y_test = train_test_split(
                customers[feature_columns],
                customers["churned"],
                test_size=test_size,
                random_state=seed,
                stratify=customers["churned"],
            )
            print(f"{len(X_train)} training rows, {len(X_test)} test rows")
            """),
            md("## Train"),
            code(
                """
                model = RandomForestClassifier(
                    n_estimators=n_estimators,
                    max_depth=max_depth,
                    n_jobs=1,
                    random_state=seed,
                )
                model.fit(X_train, y_train)
                """,
                "step:train",
            ),
            code(
                """
                assert hasattr(model, "predict_proba")
                assert model.n_features_in_ == len(feature_columns)
                assert list(model.classes_) == [0, 1]
                """,
                "test",
            ),
            md("## Evaluate"),
            code(
                """
                test_probabilities = model.predict_proba(X_test)[:, 1]
                test_predictions = (test_probabilities >= 0.5).astype(int)
                accuracy = accuracy_score(y_test, test_predictions)
                roc_auc = roc_auc_score(y_test, test_probabilities)
                print(f"accuracy {accuracy:.3f}, ROC AUC {roc_auc:.3f}")
                """,
                "step:evaluate",
            ),
            md("The features must be complete and split in the proportion asked for."),
            code(
                """
                assert not X_train.isna().any().any()
                assert not X_test.isna().any().any()
                assert len(X_train) + len(X_test) == n_rows
                assert abs(len(X_test) - test_size * n_rows) <= 1
                """,
                "test:features",
            ),
            code(
                """
                test_accuracy = float(accuracy)
                test_roc_auc = float(roc_auc)
                """,
                "metrics",
            ),
            md("""
            ## Report

            Which features the forest leans on. It reads nothing from the evaluation,
            but should only be written once the model has been evaluated.
            """),
            code(
                """
                importances = pd.Series(model.feature_importances_, index=feature_columns)
                feature_importance = importances.sort_values(ascending=False)
                feature_importance.round(3)
                """,
                "step:report",
                "after:evaluate",
            ),
            code(
                """
                assert abs(feature_importance.sum() - 1) < 1e-6
                assert set(feature_importance.index) == set(feature_columns)
                """,
                "test",
            ),
            md("""
            ## Serve

            Score one customer, applying the same feature engineering as above.
            """),
            code(
                '''
                def predict(features: dict) -> dict:
                    """Return the churn probability of one customer.

                    `features` holds tenure_months, monthly_charges, support_calls and
                    contract ("monthly", "annual" or "two_year").
                    """
                    row = pd.DataFrame([features])
                    tenure = row["tenure_months"].clip(lower=1)
                    row["charges_per_month_of_tenure"] = row["monthly_charges"] / tenure
                    row["has_support_calls"] = (row["support_calls"] > 0).astype(int)
                    row = pd.get_dummies(row, columns=["contract"], dtype=int)
                    row = row.reindex(columns=feature_columns, fill_value=0)
                    probability = float(model.predict_proba(row)[0, 1])
                    return {"churn_probability": probability, "churn": probability >= 0.5}
                ''',
                "serve:predict",
                "reference=load.customers",
            ),
            md("## Exploration"),
            code(
                """
                print(customers.groupby("support_calls")["churned"].mean().round(2))
                customers.describe().T
                """,
                "skip",
            ),
            md("An example request:"),
            code(
                """
                predict(
                    {
                        "tenure_months": 3,
                        "monthly_charges": 95.5,
                        "support_calls": 4,
                        "contract": "monthly",
                    }
                )
                """,
                "example",
            ),
            md("""
            For high traffic, score customers in batches: the same rules, one call of the
            forest for every request that arrives while it is busy.
            """),
            code(
                '''
                def predict_many(features: list[dict]) -> list[dict]:
                    """Return the churn probability of each customer, in one call of the forest.

                    Each item of `features` is a customer as `predict` takes it. The service
                    gathers the requests that arrive together into one list: the forest costs
                    about as much for 64 rows as for one, so a busy service answers many more.
                    """
                    rows = pd.DataFrame(features)
                    tenure = rows["tenure_months"].clip(lower=1)
                    rows["charges_per_month_of_tenure"] = rows["monthly_charges"] / tenure
                    rows["has_support_calls"] = (rows["support_calls"] > 0).astype(int)
                    rows = pd.get_dummies(rows, columns=["contract"], dtype=int)
                    rows = rows.reindex(columns=feature_columns, fill_value=0)
                    probabilities = model.predict_proba(rows)[:, 1].tolist()
                    return [{"churn_probability": p, "churn": p >= 0.5} for p in probabilities]
                ''',
                "serve:predict_batch",
                "batch",
                "reference=load.customers",
            ),
            code(
                """
                predict_many(
                    [
                        {"tenure_months": 3, "monthly_charges": 95.5, "support_calls": 4, "contract": "monthly"},
                        {"tenure_months": 40, "monthly_charges": 55.0, "support_calls": 0, "contract": "annual"},
                        {"tenure_months": 12, "monthly_charges": 70.0, "support_calls": 2, "contract": "two_year"},
                    ]
                )
                """,  # noqa: E501 (the notebook's lines are shorter by this file's indent)
                "example",
            ),
        ],
    )


def kale_dialect() -> NotebookNode:
    return notebook(
        "kale",
        [
            md("""
            # Wine classification, tagged for Kubeflow Kale

            This notebook uses Kale's tags (`imports`, `functions`, `pipeline-parameters`,
            `block:`, `prev:`, `pipeline-metrics`, `skip`); nbops reads them as aliases of its own.
            """),
            code(
                """
                import pandas as pd
                from sklearn.datasets import load_wine
                from sklearn.linear_model import LogisticRegression
                from sklearn.metrics import accuracy_score, f1_score
                from sklearn.model_selection import train_test_split
                from sklearn.preprocessing import StandardScaler
                """,
                "imports",
            ),
            code(
                '''
                def split_features_target(frame: pd.DataFrame, target: str = "target"):
                    """Split a frame into its feature columns and its target column."""
                    return frame.drop(columns=[target]), frame[target]
                ''',
                "functions",
            ),
            code(
                """
                test_size = 0.25  # fraction of wines held out for evaluation
                C = 1.0  # inverse regularisation strength
                max_iter = 1000  # solver iteration limit
                seed = 7  # random seed for the split
                """,
                "pipeline-parameters",
            ),
            md("## Load the data\n\nThe wine recognition data ships with scikit-learn."),
            code(
                """
                wine = load_wine(as_frame=True).frame
                print(wine.shape)
                """,
                "block:load_data",
            ),
            md("## Preprocess\n\nSplit, then standardise with statistics from the training set."),
            code(
                """
                features, target = split_features_target(wine)
                X_train, X_test, y_train, y_test = train_test_split(
                    features, target, test_size=test_size, random_state=seed, stratify=target
                )
                scaler = StandardScaler().fit(X_train)
                X_train_scaled = scaler.transform(X_train)
                X_test_scaled = scaler.transform(X_test)
                """,
                "block:preprocess",
                "prev:load_data",
            ),
            md("## Train and score"),
            code(
                """
                model = LogisticRegression(C=C, max_iter=max_iter)
                model.fit(X_train_scaled, y_train)
                predictions = model.predict(X_test_scaled)
                accuracy = accuracy_score(y_test, predictions)
                f1_macro = f1_score(y_test, predictions, average="macro")
                """,
                "block:train",
                "prev:preprocess",
            ),
            code(
                """
                wine["target"].value_counts().sort_index()
                """,
                "skip",
            ),
            md("## Metrics"),
            code(
                """
                accuracy
                f1_macro
                """,
                "pipeline-metrics",
            ),
        ],
    )


def regression() -> NotebookNode:
    return notebook(
        "regression",
        [
            md("""
            # Diabetes progression with ridge regression

            Tags are written as a first line `#| nbops: ...`, the cell-option style of
            Quarto and nbdev, for editors without a tag UI. The notebook also has the
            usual IPython extras: a `%%time` cell, a `%time` line and a `!` shell escape.
            """),
            code("""
            #| nbops: parameters
            alpha = 1.0  # ridge regularisation strength
            test_size = 0.2  # fraction of patients held out for evaluation
            cv_folds = 5  # folds for cross-validation
            seed = 0  # random seed for the split
            """),
            code("""
            #| nbops: setup
            import pandas as pd
            from sklearn.datasets import load_diabetes
            from sklearn.linear_model import Ridge
            from sklearn.metrics import mean_absolute_error, r2_score
            from sklearn.model_selection import cross_val_score, train_test_split
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler
            """),
            md("## Load\n\nTen baseline variables and a disease progression score a year later."),
            code("""
            #| nbops: step:load
            patients = load_diabetes(as_frame=True).frame
            n_rows = len(patients)
            !echo "rows: {n_rows}"
            """),
            md("## Train\n\nA standardised ridge regression, cross-validated on the training set."),
            code("""
            #| nbops: step:train
            X_train, X_test, y_train, y_test = train_test_split(
                patients.drop(columns="target"),
                patients["target"],
                test_size=test_size,
                random_state=seed,
            )
            feature_names = list(X_train.columns)
            model = make_pipeline(StandardScaler(), Ridge(alpha=alpha))
            %time model.fit(X_train, y_train)
            print(f"trained on {len(X_train)} patients")
            """),
            code("""
            %%time
            cv_scores = cross_val_score(
                make_pipeline(StandardScaler(), Ridge(alpha=alpha)),
                X_train,
                y_train,
                cv=cv_folds,
                scoring="r2",
            )
            print(cv_scores.round(3))
            """),
            code("""
            #| nbops: test
            assert model.n_features_in_ == len(feature_names)
            assert len(cv_scores) == cv_folds
            assert cv_scores.mean() > 0.3
            """),
            md("## Metrics"),
            code("""
            #| nbops: metrics
            test_r2 = float(r2_score(y_test, model.predict(X_test)))
            test_mae = float(mean_absolute_error(y_test, model.predict(X_test)))
            cv_r2 = float(cv_scores.mean())
            """),
            md("## Serve"),
            code('''
            #| nbops: serve
            def predict(features: dict[str, float]) -> float:
                """Predict the disease progression score of one patient.

                `features` maps the baseline variables (age, sex, bmi, bp, s1 to s6, scaled
                as in scikit-learn's dataset) to values; a missing variable counts as 0.
                """
                row = pd.DataFrame([features]).reindex(columns=feature_names, fill_value=0.0)
                return float(model.predict(row)[0])
            '''),
            code("""
            #| nbops: skip
            print(patients.corr()["target"].drop("target").sort_values().round(2))
            predict(X_test.iloc[0].to_dict())
            """),
        ],
    )


NOTEBOOKS = {
    "churn.ipynb": churn,
    "kale_dialect.ipynb": kale_dialect,
    "regression.ipynb": regression,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="report notebooks that are out of date, write nothing"
    )
    args = parser.parse_args(argv)

    stale = []
    for filename, build in NOTEBOOKS.items():
        nb = build()
        nbformat.validate(nb)
        path = OUT_DIR / filename
        text = nbformat.writes(nb)
        text += "" if text.endswith("\n") else "\n"  # as nbformat.write does
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path)
            continue
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
        print(f"wrote {path.relative_to(OUT_DIR.parent)}")

    for path in stale:
        print(f"out of date: {path.relative_to(OUT_DIR.parent)}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
