"""Deployments: the local target (health-gated promotion behind a stable proxy, rollback, stop,
status), their records in the state db, the service and proxy processes, `nbops serve`, and the
Docker and Kubernetes targets.

May import: `nbops.model`, `nbops.run`, `nbops.ci`, `nbops.build` and `nbops.deploy`.
"""
