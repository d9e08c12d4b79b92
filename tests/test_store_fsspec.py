"""The artifact store on fsspec: the same layout, checks and step-cache index on S3 (a real moto
server on loopback) or any fsspec URL, reopened from its URL and the environment alone; a plain
path still opens the local folder store, without importing fsspec."""

from __future__ import annotations

import json
import multiprocessing
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nbops.run.home import Home
from nbops.run.store import ArtifactStore, CorruptArtifact, FsspecStore, NotLocal, open_store

KEY = "ab" + "0" * 62
OUTPUTS = {"model": ("c" * 64, "joblib"), "rows": ("d" * 64, "parquet")}


def remote(url: str) -> FsspecStore:
    store = open_store(url)
    assert isinstance(store, FsspecStore)
    return store


def object_key(store: FsspecStore, digest: str, fmt: str) -> str:
    return store.location(digest, fmt).removeprefix("s3://")


@pytest.mark.parametrize(
    "value",
    [
        np.arange(12, dtype="float64").reshape(3, 4),
        pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]}),
        {"threshold": 0.5, "labels": ["no", "yes"]},
    ],
    ids=["array", "frame", "dict"],
)
def test_a_value_comes_back_from_s3_as_it_went_in(s3_store_url: str, value: Any) -> None:
    store = remote(s3_store_url)
    digest, fmt = store.put(value)
    assert store.has(digest, fmt)
    assert store.location(digest, fmt) == f"{s3_store_url}/{digest[:2]}/{digest}.{fmt}"
    again = open_store(store.url).get(digest, fmt)
    if isinstance(value, np.ndarray):
        np.testing.assert_array_equal(again, value)
    elif isinstance(value, pd.DataFrame):
        pd.testing.assert_frame_equal(again, value)
    else:
        assert again == value


def test_a_missing_object_is_not_there(s3_store_url: str) -> None:
    store = remote(s3_store_url)
    assert not store.has("e" * 64, "pickle")
    with pytest.raises(FileNotFoundError):
        store.get("e" * 64, "pickle")


@pytest.mark.parametrize("damage", ["overwritten", "truncated"])
def test_a_damaged_object_in_the_bucket_is_refused_then_repaired(
    s3_store_url: str, damage: str
) -> None:
    store = remote(s3_store_url)
    digest, fmt = store.put([1, 2, 3])
    key = object_key(store, digest, fmt)
    data = store.fs.cat_file(key)
    store.fs.pipe_file(key, b"other bytes" if damage == "overwritten" else data[:5])
    assert not store.has(digest, fmt)
    url = f"{s3_store_url}/{digest[:2]}/{digest}.{fmt}"
    with pytest.raises(CorruptArtifact, match=f"^{url} does not match its sha256") as caught:
        store.get(digest, fmt)
    assert caught.value.location == caught.value.path == url
    assert store.put([1, 2, 3]) == (digest, fmt)
    assert store.get(digest, fmt) == [1, 2, 3]


def test_a_second_store_on_the_same_url_recalls_a_steps_outputs(s3_store_url: str) -> None:
    open_store(s3_store_url).remember(KEY, OUTPUTS)
    other = open_store(s3_store_url)
    assert other.recall(KEY) == OUTPUTS
    assert other.recall("cd" + "0" * 62) is None
    index = remote(s3_store_url).fs.cat_file(
        f"{s3_store_url.removeprefix('s3://')}/keys/ab/{KEY}.json"
    )
    assert json.loads(index) == {"outputs": {n: list(pair) for n, pair in OUTPUTS.items()}}


def test_a_worker_process_opens_the_store_from_its_url_and_the_environment(
    s3_store_url: str,
) -> None:
    store = open_store(s3_store_url)
    digest, fmt = store.put({"n": 5})
    store.remember(KEY, {"values": (digest, fmt)})
    worker = (
        "import sys\n"
        "from nbops.run.store import open_store\n"
        "store = open_store(sys.argv[1])\n"
        "(digest, fmt), = store.recall(sys.argv[2]).values()\n"
        "print(store.get(digest, fmt))\n"
        "store.remember(sys.argv[2][::-1], {'made': store.put([7])})\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", worker, store.url, KEY], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "{'n': 5}\n"
    made = store.recall(KEY[::-1])
    assert made is not None
    assert store.get(*made["made"]) == [7]


def test_a_garbled_index_entry_is_recalled_as_nothing(s3_store_url: str) -> None:
    store = remote(s3_store_url)
    entry = f"{s3_store_url.removeprefix('s3://')}/keys/ab/{KEY}.json"
    for garbled in (b"{not json", b"[]", b'{"outputs": {"model": ["c", 1]}}'):
        store.fs.pipe_file(entry, garbled)
        assert store.recall(KEY) is None


def test_a_memory_url_writes_through_a_temp_name_and_leaves_none_behind() -> None:
    store = remote("memory://nbops-test-store")
    digest, fmt = store.put({"a": 1})
    store.remember(KEY, {"a": (digest, fmt)})
    assert open_store("memory://nbops-test-store").recall(KEY) == {"a": (digest, fmt)}
    assert open_store(store.url).get(digest, fmt) == {"a": 1}
    files = store.fs.find("/nbops-test-store")
    assert sorted(files) == [
        f"/nbops-test-store/{digest[:2]}/{digest}.{fmt}",
        f"/nbops-test-store/keys/ab/{KEY}.json",
    ]


def test_a_url_store_has_no_local_path(s3_store_url: str) -> None:
    with pytest.raises(NotLocal, match="is not a local folder"):
        open_store(s3_store_url).path("a" * 64, "npy")


def test_a_path_or_file_url_opens_the_local_folder_store(tmp_path: Path) -> None:
    for location in (tmp_path, str(tmp_path), f"file://{tmp_path}"):
        store = open_store(location)
        assert type(store) is ArtifactStore
        assert store.url == str(tmp_path)
    store = open_store(tmp_path)
    digest, fmt = store.put([1, 2])
    assert store.location(digest, fmt) == str(tmp_path / digest[:2] / f"{digest}.{fmt}")
    store.remember(KEY, {"pair": (digest, fmt)})
    assert (tmp_path / "keys" / "ab" / f"{KEY}.json").is_file()
    assert open_store(store.url).recall(KEY) == {"pair": (digest, fmt)}


def test_the_local_store_does_not_import_fsspec(tmp_path: Path) -> None:
    check = (
        "import sys\n"
        "from nbops.run.store import open_store\n"
        "store = open_store(sys.argv[1])\n"
        "store.get(*store.put([1]))\n"
        "store.remember('ab' * 32, {})\n"
        "assert 'fsspec' not in sys.modules, 'fsspec was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", check, str(tmp_path)], capture_output=True)
    assert done.returncode == 0, done.stderr


def test_a_cache_key_that_is_not_a_file_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not a cache key"):
        open_store(tmp_path).remember("../escape", {})


def test_home_takes_the_store_from_nbops_store(
    tmp_path: Path, s3_store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBOPS_HOME", str(tmp_path / ".nbops"))
    monkeypatch.delenv("NBOPS_STORE", raising=False)
    assert Home.default().store.url == str(tmp_path / ".nbops" / "artifacts")
    monkeypatch.setenv("NBOPS_STORE", s3_store_url)
    home = Home.default()
    assert home.store_location == s3_store_url
    assert home.store is home.store
    assert home.store.url == s3_store_url
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NBOPS_STORE", "shared")
    assert Home.default().store.url == str(tmp_path / "shared")


def test_a_store_used_before_a_fork_works_in_the_forked_child(s3_store_url: str) -> None:
    store = open_store(s3_store_url)
    store.put([1, 2])  # the parent's filesystem object is made and used before the fork
    child = multiprocessing.get_context("fork").Process(target=extend_in_child, args=(store,))
    child.start()  # forked: the child has this very object, not a copy made from its URL
    child.join(timeout=20)
    assert child.exitcode == 0
    assert store.recall(KEY) == {"longer": store.put([1, 2, 3])}


def test_a_url_store_travels_to_another_process_as_its_url(s3_store_url: str) -> None:
    store = open_store(s3_store_url)
    digest, fmt = store.put("sent")
    again = pickle.loads(pickle.dumps(store))
    assert isinstance(again, FsspecStore)
    assert again.url == store.url
    assert again.get(digest, fmt) == "sent"


def extend_in_child(store: ArtifactStore) -> None:
    store.remember(KEY, {"longer": store.put([1, 2, 3])})
