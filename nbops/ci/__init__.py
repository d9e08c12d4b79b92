"""What CI runs: the notebook executed headlessly through papermill (with nbops's engine), the
test cells and metric gates checked, JUnit XML and the HTML report written; and the CI workflow
`nbops ci init` writes for a repository, with the gates its notebooks declare.

May import: `nbops.model`, `nbops.run` and `nbops.ci`.
"""
