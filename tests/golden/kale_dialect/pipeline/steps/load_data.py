"""Step `load_data` of the kale_dialect pipeline: cell 5 of kale_dialect.ipynb as a function.

Generated from kale_dialect.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

from typing import Any

from ..shared import load_wine


def load_data() -> dict[str, Any]:
    """Run the cells of step `load_data` and return the values later steps read.

    Outputs:
        wine: read by preprocess
    """
    # cell 5 (id kale-05)
    wine = load_wine(as_frame=True).frame
    print(wine.shape)

    return {"wine": wine}
