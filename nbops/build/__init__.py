"""A build folder from a pipeline: generated package and tests (codegen), the FastAPI service,
type hints as pydantic fields, example requests, packaging (requirements.lock, Dockerfile,
k8s/), and `builder`, which runs, writes and moves the whole folder into place.

May import: `nbops.model`, `nbops.run`, `nbops.ci` (the run report) and `nbops.build`.
"""
