"""Option tags (`timeout=30m`, or a bare flag: `batch`): a `key=value` tag, split, and what
reading one needs."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# `key=value`; the key is a word, so `step:train=x` stays a (bad) step tag, and a value may
# hold ':' (`reads=s3://bucket/data.csv`).
OPTION_TAG = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_\-]*)\s*=\s*(?P<value>.*)$")


@dataclass(frozen=True)
class OptionSpec:
    """How one option's value is read: `parse` raises ValueError naming the accepted forms;
    `example` is a good value, shown in fixes. An option that `repeats` may be given several
    times, each adding to the others (a metadata tag holds no comma, so `reads=a.csv` and
    `reads=b.csv` are two tags); any other is given once. A `flag` is on when its key is
    written alone (`batch`), as if it were `batch=true`."""

    parse: Callable[[str], object]
    example: str
    repeats: bool = False
    flag: bool = False

    def written(self, key: str) -> str:
        """The option as a fix shows it: `timeout=30m`, or a flag's bare key."""
        return key if self.flag else f"{key}={self.example}"


@dataclass(frozen=True)
class TagOption:
    """One `key=value` option of a cell's role, with the line of its `#| nbops:` line (None
    for a metadata tag)."""

    key: str
    value: str
    line: int | None = None
    bare: bool = False  # a flag written as its key alone (`batch`); its value is "true"

    @property
    def tag(self) -> str:
        return self.key if self.bare else f"{self.key}={self.value}"


def split_option(tag: str) -> tuple[str, str] | None:
    """(key, value) of a `key=value` tag, or None when the tag is not one."""
    match = OPTION_TAG.match(tag)
    return (match["key"], match["value"].strip()) if match else None
