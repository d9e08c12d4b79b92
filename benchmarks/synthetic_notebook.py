"""A large, realistic tagged notebook built deterministically with nbformat, for benchmarks."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

PARAMETERS = """\
scale = 1.5  # factor every step applies
n_items = 200  # values in the first step
threshold = 0.25  # values below it are dropped
seed = 7  # makes the first step's values
label = "bench"  # printed by the shell cells
"""

SETUP = """\
import math
import statistics
from collections import Counter


def transform(values, factor):
    return [math.tanh(v * factor) for v in values]


def combine(*parts):
    width = min(len(part) for part in parts)
    return [sum(part[k] for part in parts) / len(parts) for k in range(width)]


def summarise(values):
    return {"n": len(values), "mean": statistics.fmean(values), "max": max(values)}
"""

FIRST_STEP = "out_s0 = [((seed * k) % 97) / 97 for k in range(n_items)]\n"


@dataclass(frozen=True)
class SyntheticNotebook:
    """What was generated, so a benchmark can say what it measured."""

    path: Path
    cells: int
    steps: int


def write_synthetic_notebook(folder: Path, cells: int, *, seed: int = 0) -> SyntheticNotebook:
    """Write `synthetic_<cells>.ipynb` into folder; the same arguments give the same bytes."""
    builder = _Builder(random.Random(seed))
    builder.build(cells)
    path = folder / f"synthetic_{cells}.ipynb"
    notebook = new_notebook(
        cells=builder.cells,
        metadata={
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
    )
    nbformat.validate(notebook)
    path.write_text(nbformat.writes(notebook), encoding="utf-8")
    return SyntheticNotebook(path=path, cells=len(builder.cells), steps=builder.steps)


class _Builder:
    """Appends cells: header, then one block per step, then a metrics cell, to an exact count."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.cells: list[nbformat.NotebookNode] = []
        self.steps = 0

    def build(self, total: int) -> None:
        self._markdown("# Synthetic pipeline\n\nGenerated for benchmarks; every step is small.")
        self._code(PARAMETERS, ["parameters"])
        self._markdown("## Setup")
        self._code(SETUP, ["setup"])
        self._code(FIRST_STEP, ["step:s0"])
        self.steps = 1
        tail = 2  # the metrics heading and cell
        while True:
            block = self._step_block(self.steps)
            if len(self.cells) + len(block) + tail > total:
                break
            self.cells.extend(block)
            self.steps += 1
        last = self.steps - 1
        for extra in range(total - tail - len(self.cells)):
            self._code(f"note_{extra} = len(out_s{last}) + {extra}\n")
        self._markdown("## Metrics")
        self._code(
            f"final_mean = statistics.fmean(out_s{last})\nsteps_run = {self.steps}\n",
            ["metrics"],
        )
        for index, cell in enumerate(self.cells):  # nbformat's own ids are random
            cell["id"] = f"cell-{index}"

    def _step_block(self, i: int) -> list[nbformat.NotebookNode]:
        """A step: maybe a heading, the tagged cell, 2-5 continuation cells, maybe a test."""
        rng = self.rng
        block = []
        if rng.random() < 0.5:
            block.append(_markdown_cell(f"## Step {i}\n\nCombines earlier results."))
        sources = [f"out_s{i - 1}"]
        if i > 2 and rng.random() < 0.4:  # fan-in from one or two earlier steps
            sources += [f"out_s{j}" for j in rng.sample(range(i - 1), rng.randint(1, 2))]
        block.append(
            _code_cell(
                f"base_s{i} = combine({', '.join(sources)})\n"
                f"base_s{i} = transform(base_s{i}, scale)\n",
                [f"step:s{i}"],
            )
        )
        block.extend(_code_cell(source) for source in self._continuation(i))
        if rng.random() < 0.12:
            tag = "test" if rng.random() < 0.7 else f"test:s{rng.randrange(i)}"
            target = i if tag == "test" else int(tag.removeprefix("test:s"))
            block.append(_code_cell(f"assert len(out_s{target}) > 0\n", [tag]))
        return block

    def _continuation(self, i: int) -> list[str]:
        """Untagged cells continuing step i; the last one writes `out_s{i}`."""
        rng = self.rng
        middle = [
            f"kept_s{i} = [v for v in base_s{i} if abs(v) > threshold] or base_s{i}\n",
            f"stats_s{i} = summarise(kept_s{i})\nprint(stats_s{i})\n",
            f"counts_s{i} = Counter()\nfor v in kept_s{i}:\n    counts_s{i}[round(v, 1)] += 1\n",
        ]
        chosen = [middle[0], *rng.sample(middle[1:], rng.randint(0, 2))]
        if rng.random() < 0.03:
            chosen.append(f"!echo {{label}} {{len(kept_s{i})}}\n")
        if rng.random() < 0.03:
            return [*chosen, f"%time out_s{i} = transform(kept_s{i}, 1 / scale)\n"]
        return [*chosen, f"out_s{i} = transform(kept_s{i}, 1 / scale)\n"]

    def _code(self, source: str, tags: list[str] | None = None) -> None:
        self.cells.append(_code_cell(source, tags))

    def _markdown(self, source: str) -> None:
        self.cells.append(_markdown_cell(source))


def _code_cell(source: str, tags: list[str] | None = None) -> nbformat.NotebookNode:
    return new_code_cell(source.rstrip("\n"), metadata={"tags": tags} if tags else {})


def _markdown_cell(source: str) -> nbformat.NotebookNode:
    return new_markdown_cell(source)
