"""Running a pipeline: the runner, the `.nbops/` home, the content-addressed artifact store and
the SQLite state db (runs, steps, the step cache, deployments' rows).

This is where user code runs and where the state every face reads is kept.

May import: `nbops.model` and `nbops.run`.
"""
