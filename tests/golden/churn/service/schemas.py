"""Request and response models of the churn service, from its serve functions' type hints.

A serve route takes a JSON object whose fields are its function's arguments, and answers
{"result": <what the function returns>}; its batch route takes a list of such objects and
answers {"results": [...], "errors": [...]}: a result per request, in order, null where the
function raised, and an error naming each such request by its index. A field the function does
not take is refused.

Generated from churn.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class ItemError(BaseModel):
    """A request of a batch the function raised on: its index in the list, and what happened
    (the traceback is logged under the response's X-Request-ID, never sent)."""

    index: int
    detail: str


class Arguments(BaseModel):
    """A request: a serve function's arguments, by name."""

    model_config = ConfigDict(extra="forbid")

    def call(self, function: Callable[..., Any]) -> Any:
        """Call the serve function with these arguments, as the notebook would."""
        raise NotImplementedError

    def item(self) -> Any:
        """A batch function's request: its one item of the list the function takes."""
        raise NotImplementedError


class PredictInput(Arguments):
    """The arguments of `predict`, from cells 22 and 26 of churn.ipynb."""

    features: dict

    def call(self, function: Callable[..., Any]) -> Any:
        return function(features=self.features)


class PredictOutput(BaseModel):
    """What `predict` returns, as `result`."""

    result: dict


class PredictBatchOutput(BaseModel):
    """What `predict` returns for each request of a batch, in order: null where it
    raised, and that request's index in `errors` (200 when there is none, else 207)."""

    results: list[dict | None]
    errors: list[ItemError] = []


class PredictManyInput(Arguments):
    """One item of the list `predict_many` takes, from cells 28 and 29 of churn.ipynb."""

    features: dict

    def call(self, function: Callable[..., Any]) -> Any:
        """`predict_many` with this request alone: a list of one item, and its one result."""
        return function([self.features])[0]

    def item(self) -> Any:
        return self.features


class PredictManyOutput(BaseModel):
    """What `predict_many` returns for this request's item, as `result`."""

    result: dict


class PredictManyBatchOutput(BaseModel):
    """What `predict_many` returns for each request of a batch, in order: null where it
    raised, and that request's index in `errors` (200 when there is none, else 207)."""

    results: list[dict | None]
    errors: list[ItemError] = []


# The service's own answers.


class Problem(BaseModel):
    """What went wrong; a 500 also has the request id its log lines carry."""

    detail: str
    request_id: str | None = None


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    """Ready once every artifact is loaded and matches its sha256 in nbops.json."""

    status: Literal["ready", "not ready"]
    reason: str | None = None


class CellRef(BaseModel):
    """A notebook cell, by its index and its id."""

    index: int
    id: str


class NotebookRef(BaseModel):
    path: str
    sha256: str


class StepRef(BaseModel):
    """A pipeline step: the cells it runs and the values it makes."""

    name: str
    cells: list[CellRef]
    outputs: list[str] = []


class ArtifactRef(BaseModel):
    """An artifact as the build recorded it; the service checks the sha256 when it loads it."""

    sha256: str
    format: str
    bytes: int | None = None


class RouteRef(BaseModel):
    """A serve route: its function, the cells it came from, the artifacts it reads."""

    name: str
    route: str
    cells: list[CellRef]
    # argument name -> "<step>.<name>", a key of `artifacts`
    artifacts: dict[str, str]


class Version(BaseModel):
    """The build served, and the lineage of each route back to the notebook's cells."""

    name: str
    build_id: str
    created_at: str | None = None
    nbops_version: str | None = None
    notebook: NotebookRef
    run_id: str | None = None
    parameters: dict[str, Any] = {}
    steps: list[StepRef] = []
    artifacts: dict[str, ArtifactRef] = {}
    endpoints: list[RouteRef] = []


class MonitoringWindow(BaseModel):
    """How much each route's window holds: requests, seconds, and the requests scores wait for."""

    max_requests: int
    max_seconds: float
    min_requests: int


class LatencyQuantiles(BaseModel):
    """Milliseconds; null while the window holds fewer than `min_requests` requests."""

    p50: float | None
    p90: float | None
    p99: float | None


class FieldDrift(BaseModel):
    """An input field or output: its window's histogram beside the reference's, and how far
    apart they are (null while the window holds fewer than `min_requests` answered requests)."""

    name: str
    kind: Literal["numeric", "categorical"]
    psi: float | None
    p_value: float | None
    flagged: bool
    # numeric: the bins' edges (one more than the shares); categorical: the categories
    edges: list[float] | None
    categories: list[str] | None
    reference_shares: list[float]
    window_shares: list[float]
    window_count: int
    reference_missing_rate: float
    window_missing_rate: float | None


class RouteMonitoring(BaseModel):
    """One serve route's window: errors, latency, and drift against its reference profile
    (`reason` says why drift is not watched)."""

    route: str
    requests: int
    errors: int
    error_rate: float | None
    latency_ms: LatencyQuantiles
    reference: str | None
    reason: str | None
    drift: float | None
    output_drift: float | None
    flagged: list[str]
    inputs: list[FieldDrift]
    outputs: list[FieldDrift]


class Monitoring(BaseModel):
    """The scores of every serve route's window of recent requests, and the thresholds."""

    enabled: bool
    window: MonitoringWindow
    max_drift: float
    computed_at: float
    routes: list[RouteMonitoring]
