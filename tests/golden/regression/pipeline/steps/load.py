"""Step `load` of the regression pipeline: cell 4 of regression.ipynb as a function.

Generated from regression.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

import shlex
import subprocess
from typing import Any

from ..shared import load_diabetes


def load() -> dict[str, Any]:
    """Run the cells of step `load` and return the values later steps read.

    Outputs:
        patients: read by train
    """
    # cell 4 (id regression-04)
    patients = load_diabetes(as_frame=True).frame
    n_rows = len(patients)
    print(
        subprocess.run(
            f'echo "rows: {shlex.quote(str(n_rows))}"',
            shell=True,
            check=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ).stdout,
        end="",
    )

    return {"patients": patients}
