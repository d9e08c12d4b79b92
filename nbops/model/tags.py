"""The tag grammar: a cell's tags (metadata or a `#| nbops:` line) read into one typed role."""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from nbops.model.diagnostic import Diagnostic, Severity
from nbops.model.durations import parse_duration
from nbops.model.notebook import Cell
from nbops.model.options import OptionSpec, TagOption, split_option


class Role(str, Enum):
    PARAMETERS = "parameters"
    SETUP = "setup"
    STEP = "step"
    TEST = "test"
    METRICS = "metrics"
    SERVE = "serve"
    SKIP = "skip"


# Tags without a name, ours first, then the dialects existing notebooks already use.
BARE_TAGS: dict[str, Role] = {
    "parameters": Role.PARAMETERS,
    "setup": Role.SETUP,
    "test": Role.TEST,
    "metrics": Role.METRICS,
    "serve": Role.SERVE,
    "skip": Role.SKIP,
    "pipeline-parameters": Role.PARAMETERS,  # Kale
    "injected-parameters": Role.PARAMETERS,  # papermill
    "imports": Role.SETUP,  # Kale
    "functions": Role.SETUP,  # Kale
    "pipeline-metrics": Role.METRICS,  # Kale
    "skip-execution": Role.SKIP,  # nbmake
}

# A mark, not a role: the serve-function calls in the cell are the routes' example requests
# (the build's smoke tests and a deploy's smoke request send them). The cell keeps its role, or
# continues the section above as an untagged cell does.
EXAMPLE = "example"

# Tags of the form `prefix:name`; `after` is not a role but an extra ordering edge.
AFTER = "after"
PREFIXED_TAGS: dict[str, Role | str] = {
    "step": Role.STEP,
    "block": Role.STEP,  # Kale 1.x
    "test": Role.TEST,
    "serve": Role.SERVE,
    "after": AFTER,
    "prev": AFTER,  # Kale
}

# `key=value` tags: options of the cell's role, by role. A new option is one entry here and a
# parser for its value (which raises ValueError naming the forms it accepts).
TIMEOUT = "timeout"
REFERENCE = "reference"
READS = "reads"


def parse_reference(value: str) -> str:
    """A `reference=` value: the artifact holding representative input rows, by name
    (`customers`) or as one step made it (`load.customers`)."""
    if not all(is_step_name(part) for part in value.split(".")) or value.count(".") > 1:
        raise ValueError("a reference is an artifact name, like 'customers' or 'load.customers'")
    return value


def parse_reads(value: str) -> tuple[str, ...]:
    """A `reads=` value: the data files a step reads that its code does not show, as paths or
    globs relative to the notebook's folder, comma-separated (`data/*.csv,lookup.json`)."""
    paths = tuple(path.strip() for path in value.split(","))
    if not all(paths):
        raise ValueError("it names an empty path; give paths or globs separated by commas")
    remote = next((path for path in paths if "://" in path), None)
    if remote is not None:
        raise ValueError(f"{remote!r} is a URL, and nbops hashes only files on this machine")
    return paths


BATCH = "batch"
FLAG_VALUES = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def parse_flag(value: str) -> bool:
    """A flag's value: `batch` alone is `batch=true`; `batch=false` turns it off."""
    try:
        return FLAG_VALUES[value.strip().lower()]
    except KeyError:
        raise ValueError(f"{value!r} is not true or false") from None


ROLE_OPTIONS: dict[Role, dict[str, OptionSpec]] = {
    Role.STEP: {
        TIMEOUT: OptionSpec(parse_duration, example="30m"),
        READS: OptionSpec(parse_reads, example="data/*.csv", repeats=True),
    },
    Role.SERVE: {
        REFERENCE: OptionSpec(parse_reference, example="customers"),
        # The function takes a list of requests' inputs and returns a list of their results.
        BATCH: OptionSpec(parse_flag, example="true", flag=True),
    },
}

# Kale and Kubeflow name steps like `data-loading`: such a name is kept for display and
# becomes a Python identifier (`data_loading`) for code, the CLI and generated modules.
DISPLAY_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
OPTION_LINE = re.compile(r"^#\|\s*nbops\s*:\s*(?P<tags>.*)$")
ROUTE = re.compile(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*$")


@dataclass(frozen=True)
class CellTags:
    """What a cell's tags say: its role (None when untagged), the name the role takes, extras."""

    role: Role | None = None
    name: str | None = None
    tag: str | None = None
    title: str | None = None  # the name as written, when it is not a Python identifier
    after: tuple[str, ...] = ()
    injected: bool = False
    example: bool = False
    diagnostics: tuple[Diagnostic, ...] = ()
    # `key=value` options the role takes, values checked, first of each key (in ROLE_OPTIONS).
    options: tuple[TagOption, ...] = ()

    def option(self, key: str) -> TagOption | None:
        return next((option for option in self.options if option.key == key), None)

    def options_of(self, key: str) -> tuple[TagOption, ...]:
        """Every `key=` option of the cell: one at most, unless the option repeats."""
        return tuple(option for option in self.options if option.key == key)


def option_line_tags(source: str) -> tuple[tuple[str, int], ...]:
    """Tags written as `#| nbops: step:train` lines, with their 1-based line numbers: the
    cell's leading `#|` lines, or those right after a cell magic, which Jupyter needs first."""
    lines = source.splitlines()
    start = 1 if lines and lines[0].startswith("%%") else 0
    found: list[tuple[str, int]] = []
    for number, line in enumerate(lines[start:], start=start + 1):
        if not line.startswith("#|"):
            break
        match = OPTION_LINE.match(line.strip())
        if match:
            found.extend((tag, number) for tag in _line_words(match["tags"]))
    return tuple(found)


def _line_words(tags: str) -> list[str]:
    """The tags of one `#| nbops:` line, split on spaces and commas, except that an option
    keeps its commas (`reads=a.csv,b.csv`)."""
    words: list[str] = []
    for word in tags.split():
        if split_option(word) is not None:
            words.append(word.rstrip(","))
        else:
            words.extend(tag for tag in word.split(",") if tag)
    return words


def read_cell_tags(cell: Cell) -> CellTags:
    """Read every tag of a cell; problems become diagnostics on the cell, never exceptions."""
    reader = _TagReader(cell)
    for tag in cell.tags:
        reader.read(tag, line=None)
    options = option_line_tags(cell.source)
    for tag, line in options:
        reader.read(tag, line=line)
    if options:
        reader.check_cell_magic_first(cell.source)
    return reader.result()


class _TagReader:
    def __init__(self, cell: Cell) -> None:
        self.cell = cell
        self.roles: list[tuple[Role, str | None, str, int | None]] = []
        self.titles: dict[str, str] = {}
        self.after: list[str] = []
        self.injected = False
        self.example = False
        self.options: list[TagOption] = []
        self.diagnostics: list[Diagnostic] = []

    def read(self, tag: str, *, line: int | None) -> None:
        tag = tag.strip()
        if tag == EXAMPLE:
            self.example = True
            return
        if tag in BARE_TAGS:
            self.injected |= tag == "injected-parameters"
            self.roles.append((BARE_TAGS[tag], None, tag, line))
            return
        option = split_option(tag)
        if option is not None:
            self.options.append(TagOption(*option, line=line))
            return
        if tag in known_flags():  # `batch`: a flag on, written alone
            self.options.append(TagOption(tag, "true", line=line, bare=True))
            return
        prefix, sep, name = tag.partition(":")
        if sep and prefix in PREFIXED_TAGS:
            self._read_prefixed(PREFIXED_TAGS[prefix], prefix, name.strip(), tag, line)
            return
        suggestion = did_you_mean(tag)
        if suggestion:
            self._warn(
                f"tag {tag!r} is not an nbops tag, so the cell is treated as untagged.",
                f"Did you mean {suggestion!r}?",
                line,
                tag,
            )

    def _read_prefixed(
        self, kind: Role | str, prefix: str, name: str, tag: str, line: int | None
    ) -> None:
        if kind is Role.SERVE:
            if not ROUTE.match(name):
                self._error(
                    f"{tag!r} does not name a route.", "Write it like 'serve:predict'.", line, tag
                )
                return
            self.roles.append((kind, name, tag, line))
            return
        if prefix == "block" and not name:
            return  # Kale 1.x: an empty block continues the step above, as an untagged cell does
        # `prev:a:b` (Kale) names several parents; any other step name holds no ':'.
        names = name.split(":") if kind == AFTER else [name]
        if not all(is_display_name(n) for n in names):
            self._error(
                f"{tag!r}: step names are letters, digits, '_', '-' and '.', "
                f"and {name!r} is not one.",
                f"Rename it, e.g. '{prefix}:{suggest_identifier(name)}'.",
                line,
                tag,
            )
            return
        identifiers = [step_identifier(n) for n in names]
        if kind == AFTER:
            self.after.extend(identifiers)
        else:
            assert isinstance(kind, Role)
            if name != identifiers[0]:
                self.titles.setdefault(identifiers[0], name)
            self.roles.append((kind, identifiers[0], tag, line))

    def result(self) -> CellTags:
        roles = self.roles
        if any(role is Role.SKIP for role, *_ in roles):
            return CellTags(
                role=Role.SKIP,
                tag="skip",
                example=self.example,
                diagnostics=tuple(self.diagnostics),
            )
        if not roles:
            self._check_options(None)
            return CellTags(
                after=tuple(self.after), example=self.example, diagnostics=tuple(self.diagnostics)
            )
        self._check_one_role()
        role, name, tag, _ = roles[0]
        options = self._check_options(role)
        named = next((n for r, n, _, _ in roles if r is role and n), name)
        return CellTags(
            role=role,
            name=named,
            tag=tag if named == name else f"{role.value}:{named}",
            title=self.titles.get(named) if named else None,
            after=tuple(self.after),
            injected=self.injected,
            example=self.example,
            diagnostics=tuple(self.diagnostics),
            options=options,
        )

    def _check_one_role(self) -> None:
        """A cell plays one role under one name; a second role or name is an error."""
        roles = self.roles
        if len({role for role, *_ in roles}) > 1:
            names = ", ".join(repr(tag) for _, _, tag, _ in roles)
            self._error(
                f"the cell has more than one role ({names}); nbops uses the first.",
                "Split the cell, or keep one of these tags.",
                roles[1][3],
                roles[1][2],
            )
            return
        named = [(name, tag, line) for _, name, tag, line in roles if name]
        other = next(((t, line) for n, t, line in named if n != named[0][0]), None)
        if other is not None:
            tags = ", ".join(repr(tag) for _, tag, _ in named)
            self._error(
                f"the cell has more than one name ({tags}); nbops uses {named[0][0]!r}.",
                "Keep one of these tags, or split the cell.",
                other[1],
                other[0],
            )

    def _check_options(self, role: Role | None) -> tuple[TagOption, ...]:
        """The options `role` takes whose values read; the first of a key wins, except for
        options that repeat, which are all kept."""
        kept: dict[str, TagOption] = {}
        repeated: list[TagOption] = []
        for option in self.options:
            spec = self._option_spec(role, option)
            if spec is None:
                continue
            try:
                spec.parse(option.value)
            except ValueError as problem:
                fix = f"Write it like '{spec.written(option.key)}'."
                self._error(f"{option.tag!r}: {problem}.", fix, option.line, option.tag)
                continue
            if spec.repeats:
                repeated.append(option)
                continue
            first = kept.setdefault(option.key, option)
            if spec.parse(first.value) != spec.parse(option.value):
                self._error(
                    f"the cell gives {option.key!r} twice ({first.tag!r}, {option.tag!r}); "
                    f"nbops uses {first.tag!r}.",
                    "Keep one of these tags.",
                    option.line,
                    option.tag,
                )
        return (*kept.values(), *repeated)

    def _option_spec(self, role: Role | None, option: TagOption) -> OptionSpec | None:
        """How `role` reads `option`, or None (with a diagnostic) when it takes no such option."""
        taken = ROLE_OPTIONS.get(role, {}) if role is not None else {}
        if option.key in taken:
            return taken[option.key]
        takers = roles_taking(option.key)
        if takers:
            spec = ROLE_OPTIONS[takers[0]][option.key]
            kinds = " or ".join(r.value for r in takers)
            where = f"a {role.value}" if role is not None else "an untagged"
            self._error(
                f"{option.tag!r} is on {where} cell, but only {kinds} cells take "
                f"{option.key!r}, so nbops ignores it.",
                f"Put it on the {kinds} cell, beside its tag: "
                f"'{takers[0].value}:<name> {spec.written(option.key)}'.",
                option.line,
                option.tag,
            )
        elif role is not None:
            self._warn(
                f"{option.key!r} is not an option {role.value} cells take, so nbops ignores it.",
                _option_fix(role, option),
                option.line,
                option.tag,
            )
        else:
            suggestion = _closest(option.key.lower(), known_options())
            if suggestion:
                self._warn(
                    f"tag {option.tag!r} is not an nbops tag, so the cell is treated as untagged.",
                    f"Did you mean '{suggestion}={option.value}'?",
                    option.line,
                    option.tag,
                )
        return None

    def check_cell_magic_first(self, source: str) -> None:
        """A `%%magic` below `#|` lines runs in nbops but fails in Jupyter and papermill."""
        lines = source.splitlines()
        below = next((n for n, line in enumerate(lines) if not line.startswith("#|")), len(lines))
        if 0 < below < len(lines) and lines[below].startswith("%%"):
            magic = lines[below].split()[0]
            self._error(
                f"{magic} comes after the '#| nbops:' line, but Jupyter runs a cell magic only "
                "on a cell's first line, so this cell fails in Jupyter and papermill.",
                f"Put {magic} first and the '#| nbops:' line right below it; nbops reads it "
                "there too.",
                below + 1,
                lines[below].strip(),
            )

    def _warn(self, message: str, fix: str, line: int | None, tag: str) -> None:
        self._add(Severity.WARNING, message, fix, line, tag)

    def _error(self, message: str, fix: str, line: int | None, tag: str) -> None:
        self._add(Severity.ERROR, message, fix, line, tag)

    def _add(self, severity: Severity, message: str, fix: str, line: int | None, tag: str) -> None:
        self.diagnostics.append(
            Diagnostic(
                severity,
                message,
                fix,
                cell_index=self.cell.index,
                cell_id=self.cell.id,
                line=line,
                tag=tag,
            )
        )


def roles_taking(key: str) -> tuple[Role, ...]:
    """The roles that take option `key`, in ROLE_OPTIONS order."""
    return tuple(role for role, options in ROLE_OPTIONS.items() if key in options)


def known_options() -> frozenset[str]:
    return frozenset(key for options in ROLE_OPTIONS.values() for key in options)


def known_flags() -> frozenset[str]:
    """The options that may be written as their key alone (`batch`)."""
    return frozenset(
        key for options in ROLE_OPTIONS.values() for key, spec in options.items() if spec.flag
    )


def _option_fix(role: Role, option: TagOption) -> str:
    """Did-you-mean among the options `role` takes, or the list of them."""
    taken = ROLE_OPTIONS.get(role, {})
    match = _closest(option.key.lower(), taken)
    if match:
        return f"Did you mean '{match}={option.value}'?"
    if not taken:
        return f"{role.value.capitalize()} cells take no options; remove it."
    listing = ", ".join(f"'{spec.written(key)}'" for key, spec in taken.items())
    return f"{role.value.capitalize()} cells take {listing}."


def is_step_name(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


def is_display_name(name: str) -> bool:
    """A step name nbops accepts: a Python identifier, or a Kale/Kubeflow name like
    `data-loading` or `2-clean` (letters, digits, '_', '-', '.')."""
    return is_step_name(name) or bool(DISPLAY_NAME.match(name))


def step_identifier(name: str) -> str:
    """The Python name of a step called `name`: itself when it is one, else the closest one."""
    return name if is_step_name(name) else suggest_identifier(name)


def suggest_identifier(name: str) -> str:
    """A valid step name close to `name`: other characters become `_`, a leading digit gets one."""
    cleaned = re.sub(r"\W+", "_", name.strip())
    # \w also matches characters Python does not allow in names, such as '²'.
    cleaned = "".join(c if f"a{c}".isidentifier() else "_" for c in cleaned).strip("_")
    if not cleaned:
        return "step"
    if not cleaned[0].isidentifier() or keyword.iskeyword(cleaned):
        cleaned = f"_{cleaned}"
    return cleaned if is_step_name(cleaned) else "step"


def did_you_mean(tag: str) -> str | None:
    """The nbops tag a mistyped one was meant to be, or None when it looks like someone else's."""
    prefix, sep, name = tag.partition(":")
    bare_tags = {**BARE_TAGS, EXAMPLE: EXAMPLE, **dict.fromkeys(known_flags(), "")}
    if sep:
        match = _closest(prefix.lower(), PREFIXED_TAGS)
        # `skip:exploration`: a tag that takes no name, given one.
        return f"{match}:{name}" if match else _closest(prefix.lower(), bare_tags)
    bare = _closest(tag.lower(), bare_tags)
    if bare is None and tag.lower() in PREFIXED_TAGS:  # `step` alone: a tag that needs a name
        return f"{tag.lower()}:<name>"
    return bare


def _closest(word: str, known: Iterable[str]) -> str | None:
    """The known tag at most one typo per four of its letters away from `word`, if any."""
    distances = {tag: _edit_distance(word, tag) for tag in known}
    near = [tag for tag, d in distances.items() if d <= max(1, len(tag) // 4)]
    return min(near, key=lambda tag: (distances[tag], tag)) if near else None


def _edit_distance(a: str, b: str) -> int:
    """Insertions, deletions, substitutions and swaps of neighbours that turn `a` into `b`."""
    previous: list[int] = []
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        before, previous, row = previous, row, [i] + [0] * len(b)
        for j, y in enumerate(b, start=1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (x != y))
            if i > 1 and j > 1 and x == b[j - 2] and a[i - 2] == y:
                row[j] = min(row[j], before[j - 2] + 1)
    return row[-1]
