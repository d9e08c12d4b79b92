"""The folders here hold generated code pinned by tests/test_golden.py: files to compare, not
tests to collect (each has a tests/ folder of its own that imports a package named `pipeline`)."""

from pathlib import Path

collect_ignore = sorted(path.name for path in Path(__file__).parent.iterdir() if path.is_dir())
