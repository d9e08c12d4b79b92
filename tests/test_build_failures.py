"""A failed build names the cells to fix: the test cells whose generated tests failed, or the
serve cells when the service's smoke tests did, with the fix that fits (through the CLI)."""

from __future__ import annotations

from pathlib import Path

from test_examples import BASE, SERVE, nbops, write


def test_a_failing_test_cell_is_named_with_its_fix(tmp_path: Path) -> None:
    cells = [*BASE, ("assert len(scaled) == 4, 'three values, not four'", ["test"]), SERVE]
    done = nbops(tmp_path, "build", str(write(tmp_path, cells)), "-o", "out")
    assert done.exit_code == 1
    assert first_and_last(done.stderr) == (
        "error: small.ipynb cell 3 [test]: the generated test of the test cell failed, so the "
        "build was not replaced.",
        "  fix: Fix the test cell or the steps it checks (the test output is above), then "
        "build again.",
    )
    assert "three values, not four" in done.stderr


def test_a_serve_cell_that_raises_when_the_service_starts_is_named_with_its_fix(
    tmp_path: Path,
) -> None:
    raising = ("import json\nCONFIG = json.loads('{')\n" + SERVE[0], ["serve"])
    cells = [*BASE, ("assert len(scaled) == 3", ["test"]), raising]
    done = nbops(tmp_path, "build", str(write(tmp_path, cells)), "-o", "out")
    assert done.exit_code == 1
    assert first_and_last(done.stderr) == (
        "error: small.ipynb cell 4 [serve]: the service did not get ready in its smoke tests, "
        "so the build was not replaced.",
        "  fix: When the service starts it loads its artifacts and runs the serve cells, and "
        "that failed (the reason is in the output above). Fix the serve cells, or move what is "
        "not a definition to a test or skip cell, then build again.",
    )
    assert "JSONDecodeError" in done.stderr


def test_an_example_the_service_does_not_answer_is_named_with_its_fix(tmp_path: Path) -> None:
    cells = [*BASE, SERVE, ("predict({'y': 1.0})", ["example"])]
    done = nbops(tmp_path, "build", str(write(tmp_path, cells)), "-o", "out")
    assert done.exit_code == 1
    assert first_and_last(done.stderr) == (
        "error: small.ipynb cell 3 [serve]: the service's smoke tests failed: the example "
        "request of /predict (cell 4) was not answered 200, so the build was not replaced.",
        "  fix: Fix the serve function, or its example call, so that the call works as the "
        "notebook makes it (the error is in the output above), then build again.",
    )
    assert "KeyError: 'x'" in done.stderr


def first_and_last(text: str) -> tuple[str, str]:
    lines = text.splitlines()
    return lines[0], lines[-1]
