"""Cache keys that cover what a step's code depends on outside the notebook: the versions of the
distributions it imports, and the content of the data files it reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from builders import messages, pipeline

from nbops.model.analysis import analyse
from nbops.model.lineage import lineage_dict, to_mermaid
from nbops.model.notebook import load_notebook
from nbops.run.datafiles import MISSING
from nbops.run.home import Home
from nbops.run.runner import run_pipeline
from nbops.run.state import RunRecord

NBOPS = str(Path(sys.executable).parent / "nbops")
MakeNotebook = Callable[..., Path]


def statuses(record: RunRecord | dict[str, Any]) -> dict[str, str]:
    if isinstance(record, dict):
        return {s["name"]: s["status"] for s in record["steps"]}
    return {s.name: s.status for s in record.steps}


# libraries


def fake_distribution(root: Path, module: str, version: str, source: str) -> None:
    """A distribution importlib.metadata finds on sys.path: the module and its dist-info."""
    package = root / module
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(source)
    info = root / f"{module}-1.0.dist-info"
    info.mkdir(exist_ok=True)
    name = module.replace("_", "-")
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "top_level.txt").write_text(f"{module}\n")
    (info / "RECORD").write_text(f"{module}/__init__.py,,\n{info.name}/METADATA,,\n")


LIBRARIES = [
    ("import fakelib_b as fb", ["setup"]),
    ("numbers = [1, 2, 3]", ["step:load"]),
    ("import fakelib_a\nscaled = [n * fakelib_a.FACTOR for n in numbers]", ["step:use_a"]),
    ("total = sum(numbers) + fb.OFFSET", ["step:use_b"]),
    ("result = sum(scaled)", ["step:after_a"]),
    ("final = result + total", ["metrics"]),
]


def test_upgrading_a_library_reruns_exactly_the_steps_that_import_it(
    tmp_path: Path, make_notebook: MakeNotebook
) -> None:
    libs = tmp_path / "libs"
    fake_distribution(libs, "fakelib_a", "1.0", "FACTOR = 2\n")
    fake_distribution(libs, "fakelib_b", "1.0", "OFFSET = 10\n")
    path = make_notebook(LIBRARIES)
    env = {**os.environ, "NBOPS_HOME": str(tmp_path / ".nbops"), "PYTHONPATH": str(libs)}

    def run() -> dict[str, Any]:
        done = subprocess.run(
            [NBOPS, "run", str(path), "--format", "json"], capture_output=True, text=True, env=env
        )
        assert done.returncode == 0, done.stderr
        found: dict[str, Any] = json.loads(done.stdout)
        return found

    first = run()
    assert set(statuses(first).values()) == {"ran"}
    use_a = next(s for s in first["steps"] if s["name"] == "use_a")
    assert use_a["libraries"] == {"fakelib-a": "1.0"}
    assert first["metrics"] == {"final": 28.0}
    shown = subprocess.run(
        [NBOPS, "runs", "show", first["run_id"]], capture_output=True, text=True, env=env
    )
    assert "  use_a: fakelib-a 1.0\n" in shown.stdout
    assert "  use_b: fakelib-b 1.0\n" in shown.stdout
    assert "load:" not in shown.stdout

    meta = libs / "fakelib_a-1.0.dist-info" / "METADATA"
    meta.write_text(meta.read_text().replace("Version: 1.0", "Version: 2.0"))
    # Only use_a imports fakelib_a. It runs again, but makes the same bytes (the module's code
    # did not change), so after_a, whose inputs' hashes are those it was cached with, stays
    # cached: a version counts for the steps that import it, not for those downstream.
    assert statuses(run()) == {
        "load": "cached",
        "use_a": "ran",
        "use_b": "cached",
        "after_a": "cached",
    }

    (libs / "fakelib_a" / "__init__.py").write_text("FACTOR = 3\n")
    meta.write_text(meta.read_text().replace("Version: 2.0", "Version: 3.0"))
    upgraded = run()  # a new version that computes differently: its dependents follow
    assert statuses(upgraded) == {
        "load": "cached",
        "use_a": "ran",
        "use_b": "cached",
        "after_a": "ran",
    }
    assert upgraded["metrics"] == {"final": 34.0}

    # A setup import counts only for the steps that use the name it binds: use_b reads `fb`.
    meta_b = libs / "fakelib_b-1.0.dist-info" / "METADATA"
    meta_b.write_text(meta_b.read_text().replace("Version: 1.0", "Version: 1.1"))
    assert statuses(run()) == {
        "load": "cached",
        "use_a": "cached",
        "use_b": "ran",
        "after_a": "cached",
    }


def test_a_step_imports_what_its_cells_import_and_the_setup_names_it_uses() -> None:
    p = pipeline(
        [
            ("import numpy as np\nimport pandas\nfrom sklearn.svm import SVC\n", ["setup"]),
            ("def helper():\n    return np.zeros(2)", ["setup"]),
            ("import os.path\nfrom . import local\nvalues = helper()", ["step:a"]),
            ("model = SVC()\nx = [values]", ["step:b"]),
        ]
    )
    assert [s.imports for s in p.steps] == [("numpy", "os"), ("sklearn",)]


def test_a_setup_function_brings_the_modules_it_imports_to_the_steps_that_call_it() -> None:
    p = pipeline(
        [
            ("def fit(x):\n    from sklearn.svm import SVC\n    return SVC().fit(x)", ["setup"]),
            ("def outer(x):\n    return fit(x)", ["setup"]),
            ("model = outer([1])", ["step:a"]),
            ("b = model", ["step:b"]),
        ]
    )
    assert [s.imports for s in p.steps] == [("sklearn",), ()]


def test_a_setup_import_setup_code_uses_as_it_runs_counts_for_every_step() -> None:
    p = pipeline(
        [
            ("import numpy as np\nZERO = np.zeros(1)", ["setup"]),
            ("a = 1", ["step:a"]),
            ("b = a + 1", ["step:b"]),
        ]
    )
    assert [s.imports for s in p.steps] == [("numpy",), ("numpy",)]


# data files


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The notebook's folder, the working directory too, as Jupyter runs a notebook."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_notebook(path: Path, home: Home) -> RunRecord:
    return run_pipeline(analyse(load_notebook(path)), home=home)


DATA = [
    ("rows = open('data.csv').read().splitlines()", ["step:load"]),
    ("count = len(rows)", ["step:count"]),
    ("other = 1", ["step:other"]),
    ("summary = (count, other)", ["metrics"]),
]


def test_changing_a_data_file_reruns_its_reader_and_dependents_and_touching_it_nothing(
    folder: Path, make_notebook: MakeNotebook
) -> None:
    home = Home(folder / ".nbops")
    data = folder / "data.csv"
    data.write_text("a,b\n1,2\n")
    path = make_notebook(DATA)
    first = run_notebook(path, home)
    assert statuses(first) == {"load": "ran", "count": "ran", "other": "ran"}
    assert first.steps[0].provenance["files"] == {"data.csv": sha256_of(data)}
    assert statuses(run_notebook(path, home)) == dict.fromkeys(["load", "count", "other"], "cached")

    os.utime(data, ns=(data.stat().st_atime_ns, data.stat().st_mtime_ns - 10**10))
    assert statuses(run_notebook(path, home)) == dict.fromkeys(["load", "count", "other"], "cached")

    data.write_text("a,b\n1,2\n3,4\n")
    changed = run_notebook(path, home)
    assert statuses(changed) == {"load": "ran", "count": "ran", "other": "cached"}
    assert changed.steps[1].outputs != first.steps[1].outputs

    data.write_text("a,b\n5,6\n7,8\n")  # the same size, at once: hashed again all the same
    again = run_notebook(path, home)
    assert statuses(again) == {"load": "ran", "count": "ran", "other": "cached"}
    assert again.steps[1].outputs == changed.steps[1].outputs  # so the metrics stay cached


def test_a_reads_glob_picks_up_a_new_file_and_a_missing_file_has_its_own_mark(
    folder: Path, make_notebook: MakeNotebook
) -> None:
    home = Home(folder / ".nbops")
    (folder / "data").mkdir()
    (folder / "data" / "a.csv").write_text("1\n")
    gather = "import glob\nparts = sorted(glob.glob('data/*.csv'))"
    path = make_notebook(
        [
            (gather, ["step:gather", "reads=data/*.csv", "reads=extra/*.txt", "reads=lookup.json"]),
            ("n = len(parts)", ["step:use"]),
        ]
    )
    first = run_notebook(path, home)
    assert first.steps[0].provenance["files"] == {
        "data/a.csv": sha256_of(folder / "data" / "a.csv"),
        "lookup.json": MISSING,
    }
    assert statuses(run_notebook(path, home)) == {"gather": "cached", "use": "cached"}

    (folder / "data" / "b.csv").write_text("2\n")
    assert statuses(run_notebook(path, home)) == {"gather": "ran", "use": "ran"}

    (folder / "lookup.json").write_text("{}")
    assert statuses(run_notebook(path, home)) == {"gather": "ran", "use": "cached"}


def test_a_module_beside_the_notebook_counts_by_its_content(
    folder: Path, make_notebook: MakeNotebook, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = Home(folder / ".nbops")
    monkeypatch.syspath_prepend(str(folder))
    helpers = folder / "nbops_test_helpers.py"
    helpers.write_text("WORD = 'a'\n")
    path = make_notebook(
        [
            ("import nbops_test_helpers\nword = nbops_test_helpers.WORD", ["step:load"]),
            ("n = 1", ["step:other"]),
        ]
    )
    first = run_notebook(path, home)
    assert first.steps[0].provenance == {
        "libraries": {},
        "files": {"nbops_test_helpers.py": sha256_of(helpers)},
    }
    helpers.write_text("WORD = 'b'\n")
    assert statuses(run_notebook(path, home)) == {"load": "ran", "other": "cached"}


def test_the_run_record_shows_the_libraries_and_files_each_step_depended_on(
    folder: Path, make_notebook: MakeNotebook
) -> None:
    home = Home(folder / ".nbops")
    (folder / "data.csv").write_text("x\n")
    record = run_notebook(make_notebook(DATA), home)
    saved = home.db().run(record.run_id)
    assert saved is not None
    load = saved.as_dict()["steps"][0]
    assert load["files"] == {"data.csv": sha256_of(folder / "data.csv")}
    assert "files" not in saved.as_dict()["steps"][2]  # `other` depends on nothing outside


def sha256_of(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


# what the analysis finds


def test_file_paths_are_found_in_the_calls_that_read_files() -> None:
    code = "\n".join(
        [
            "import pandas as pd, numpy as np, json, pickle, joblib",
            "from pathlib import Path",
            "a = pd.read_csv('data/a.csv')",
            "b = pd.read_parquet(path='b.parquet')",
            "c = np.load('c.npy')",
            "d = np.loadtxt('d.txt')",
            "e = joblib.load('model.joblib')",
            "f = pickle.load(open('f.pkl', 'rb'))",
            "g = json.load(open('g.json'))",
            "h = Path('h.txt').read_text()",
            "i = Path('i.bin').read_bytes()",
            "with open('out.txt', 'w') as out:",
            "    out.write('x')",
            "j = pd.read_csv('https://example.com/j.csv')",
            "k = pd.read_sql('SELECT 1', None)",
            "name = 'l.csv'",
            "l = pd.read_csv(name)",
        ]
    )
    p = pipeline([(code, ["step:load"])])
    assert [f.path for f in p.steps[0].files_read] == [
        "data/a.csv",
        "b.parquet",
        "c.npy",
        "d.txt",
        "model.joblib",
        "f.pkl",
        "g.json",
        "h.txt",
        "i.bin",
    ]


def test_reads_on_an_nbops_line_keeps_its_commas_and_reads_may_repeat() -> None:
    p = pipeline(["#| nbops: step:load, reads=a.csv,b/*.csv timeout=1m reads=c.csv\nx = 1"])
    assert [(f.path, f.found) for f in p.steps[0].files_read] == [
        ("a.csv", "reads"),
        ("b/*.csv", "reads"),
        ("c.csv", "reads"),
    ]
    assert p.steps[0].timeout_s == 60.0
    assert messages(p) == [
        "warning cell 0 line None: step 'load' writes 'x', which nothing after it reads. | "
        "Read its outputs in a later step, test, metrics or serve cell, or tag the cell 'skip' "
        "if it is exploration."
    ]


def test_a_bad_reads_value_and_reads_on_a_serve_cell_are_errors() -> None:
    p = pipeline(
        [
            "#| nbops: step:load reads=a.csv,,b.csv\nx = 1",
            ("y = x", ["step:other", "reads=s3://bucket/data.csv"]),
            ("def predict(v: int) -> int:\n    return v + y", ["serve", "reads=data.csv"]),
        ]
    )
    assert [m for m in messages(p) if m.startswith("error")] == [
        "error cell 0 line 1: 'reads=a.csv,,b.csv': it names an empty path; give paths or "
        "globs separated by commas. | Write it like 'reads=data/*.csv'.",
        "error cell 1 line None: 'reads=s3://bucket/data.csv': 's3://bucket/data.csv' is a URL, "
        "and nbops hashes only files on this machine. | Write it like 'reads=data/*.csv'.",
        "error cell 2 line None: 'reads=data.csv' is on a serve cell, but only step cells take "
        "'reads', so nbops ignores it. | Put it on the step cell, beside its tag: "
        "'step:<name> reads=data/*.csv'.",
    ]
    assert [d.tag for d in p.errors] == [
        "reads=a.csv,,b.csv",
        "reads=s3://bucket/data.csv",
        "reads=data.csv",
    ]


def test_lineage_has_the_files_each_step_reads() -> None:
    p = pipeline(
        [
            ("import pandas as pd\nframe = pd.read_csv('data.csv')", ["step:load", "reads=x/*"]),
            ("n = len(frame)", ["step:count"]),
        ]
    )
    steps = lineage_dict(p)["steps"]
    assert steps[0]["files"] == [
        {"path": "data.csv", "found": "static"},
        {"path": "x/*", "found": "reads"},
    ]
    assert steps[1]["files"] == []
    assert '  file_0[("data.csv")]\n  file_0 --> step_load\n' in to_mermaid(p)
