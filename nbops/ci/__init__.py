"""What CI runs: the notebook executed headlessly through papermill (with nbops's engine), the
test cells and metric gates checked, JUnit XML and the HTML report written.

May import: `nbops.model`, `nbops.run` and `nbops.ci`.
"""
