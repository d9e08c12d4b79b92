"""A cell's source as plain Python for generated code: IPython syntax becomes what it does.

Cells that Python already parses stay as written, comments and all. Otherwise IPython's own
transformer turns each `%magic` and `!shell` line into one `get_ipython()` call line, and each of
those lines is replaced by the plain Python that does the same, or by a `pass` that says what
was left out. Cell magics (`%%time`, `%%writefile`, ...) are decided on the cell as a whole.
"""

from __future__ import annotations

import ast
import functools
import io
import re
import shlex
import tokenize
from collections.abc import Collection
from dataclasses import dataclass, field

from nbops.model.dataflow import without_magic_options
from nbops.model.python_source import FILE_MAGICS, PYTHON_BODY_MAGICS, CellPython
from nbops.model.tags import OPTION_LINE

# What generated code imports for a converted cell: (module, name); name None for `import module`.
Import = tuple[str, str | None]
SUBPROCESS: Import = ("subprocess", None)
SHLEX: Import = ("shlex", None)
PATH: Import = ("pathlib", "Path")

# Line magics whose argument is the statement they run (`%time y = f(x)`).
STATEMENT_MAGICS = frozenset({"time", "timeit", "prun"})
# Line magics that capture a shell command's output lines, like `!!cmd`.
CAPTURE_MAGICS = frozenset({"sx", "system"})
# Cell magics whose body is a shell script, with the shell that runs it (None: the default).
SHELL_CELL_MAGICS: dict[str, str | None] = {"bash": "/bin/bash", "sh": None}
# Cell magics that only show their body in the notebook.
DISPLAY_CELL_MAGICS = frozenset({"html", "HTML", "markdown", "javascript", "js", "latex", "svg"})
# A shell command's output, stderr included, comes back as text to be printed: through
# sys.stdout it reaches the step's log (or the notebook), where a child's own stdout would not.
SHOWN_OUTPUT = ("stdout=subprocess.PIPE", "stderr=subprocess.STDOUT", "text=True")
# Installing packages belongs in the build's requirements, not in a pipeline run.
INSTALL_COMMAND = re.compile(r"^\s*(pip3?|python3? -m pip|conda|mamba|uv pip)\s+install\b")
# IPython expands `{expr}` and `$name` in shell commands; `{{`, `}}` and `$$` are escapes.
SHELL_FIELD = re.compile(r"\{\{|\}\}|\$\$|\{([^{}]+)\}|\$([A-Za-z_]\w*)")
HELP_MAGICS = {"pinfo": "{}?", "pinfo2": "{}??", "psearch": "?{}"}
FSTRING_START = getattr(tokenize, "FSTRING_START", -1)  # Python 3.12+ tokenizes f-strings
FSTRING_END = getattr(tokenize, "FSTRING_END", -1)


@dataclass(frozen=True)
class PlainPython:
    """Cell code that runs without IPython, and the imports that code needs.

    `tree` is the cell's own syntax tree when the code is the cell as written: its line
    numbers are the cell's, `line_offset` more than the code's. None when the code was
    converted; `syntax` then parses it, once.
    """

    code: str
    imports: tuple[Import, ...] = ()
    tree: ast.Module | None = field(default=None, compare=False, repr=False)
    line_offset: int = field(default=0, compare=False, repr=False)
    # For converted code whose lines are not the cell's one for one (a `!cmd` becomes a call
    # over several lines): the line of the cell's text each line of the code comes from.
    source_lines: tuple[int, ...] = field(default=(), compare=False, repr=False)

    @functools.cached_property
    def syntax(self) -> tuple[ast.Module, int] | None:
        """The code's tree and how far its line numbers are ahead of the code's; None when
        the code does not parse."""
        if self.tree is not None:
            return self.tree, self.line_offset
        try:
            return ast.parse(self.code), 0
        except (SyntaxError, ValueError):
            return None

    def in_cell_lines(self, tree: ast.Module, offset: int) -> ast.Module:
        """`tree`, parsed from `code`, numbered as the cell's lines: `offset` lines down, and
        each line of a converted magic as the magic's one line."""
        if self.source_lines:
            lines = self.source_lines
            for node in ast.walk(tree):
                if "lineno" in node._attributes:
                    end = getattr(node, "end_lineno", None)
                    node.lineno = lines[node.lineno - 1]  # type: ignore[attr-defined]
                    node.end_lineno = lines[end - 1] if end else None  # type: ignore[attr-defined]
        return ast.increment_lineno(tree, offset)

    @functools.cached_property
    def string_lines(self) -> frozenset[int]:
        """Lines (1-based) inside a multi-line string, which indenting must leave alone."""
        return frozenset(_string_lines_of(self.code, self.syntax))


def plain_python(source: str, parsed: CellPython | None = None) -> PlainPython:
    """The cell as plain Python, without `#| nbops:` lines and surrounding blank lines.

    `parsed` is the cell's parse (`cell_python(source)`); when it says the source is plain
    Python already, the code is the trimmed source and its tree is the cell's.
    """
    text = _trimmed(_without_option_lines(_trimmed(source)))
    if parsed is not None and parsed.plain:
        offset = _line_offset(source, text)
        tree = parsed.tree if offset is not None else None
        return PlainPython(text, tree=tree, line_offset=offset or 0)
    first, _, body = text.partition("\n")
    if first.startswith("%%"):  # as IPython sees it: a cell magic is the first non-blank line
        return _cell_magic(first, body)
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return _line_magics(text)
    return PlainPython(text, tree=tree)


def indent_code(code: str, width: int = 4, keep: Collection[int] | None = None) -> str:
    """Indent code into a block, leaving the lines inside multi-line strings as they are.

    Those lines are part of the string's value, so moving them would change what the program
    does. A string that is a statement of its own (a docstring) moves with the code, as
    `ruff format` would move it. `keep` is those lines when known (`PlainPython.string_lines`);
    else the code is parsed to find them.
    """
    keep = _string_lines(code) if keep is None else keep
    pad = " " * width
    return "\n".join(
        line if number in keep or not line.strip() else pad + line
        for number, line in enumerate(code.split("\n"), start=1)
    )


# the whole cell


def _line_offset(source: str, text: str) -> int | None:
    """How many lines of the cell come before the code `text`; None when the code is not one
    stretch of the cell's lines (a `#| nbops:` line dropped between other `#|` lines)."""
    lines, code = source.split("\n"), text.split("\n")
    offset = 0
    while offset < len(lines) and lines[offset] != code[0]:
        offset += 1
    return offset if lines[offset : offset + len(code)] == code else None


def _trimmed(text: str) -> str:
    """The text without its leading and trailing whitespace-only lines."""
    lines = text.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


def _without_option_lines(text: str) -> str:
    """Drop the leading `#| nbops: ...` tag lines; other `#|` lines (Quarto's) stay."""
    lines = text.split("\n")
    count = 0
    while count < len(lines) and lines[count].startswith("#|"):
        count += 1
    head = [line for line in lines[:count] if not OPTION_LINE.match(line.strip())]
    return "\n".join(head + lines[count:])


def _cell_magic(first: str, body: str) -> PlainPython:
    name, _, args = first[2:].partition(" ")
    if name in PYTHON_BODY_MAGICS:  # `%%time`, `%%capture`: the body is the code that runs
        return plain_python(body)
    if name in FILE_MAGICS:
        return _write_file(args, body)
    if name in SHELL_CELL_MAGICS:
        return _shell_script(SHELL_CELL_MAGICS[name], body)
    why = "display only" if name in DISPLAY_CELL_MAGICS else "it runs only in IPython"
    return PlainPython(_left_out(f"{first.strip()} ({why})"))


def _write_file(args: str, body: str) -> PlainPython:
    words = _words(args)
    paths = [word for word in words if not word.startswith("-")]
    append = "-a" in words or "--append" in words
    if not paths:
        return PlainPython(_left_out(f"%%writefile {args.strip()} (no file named)"))
    path = _expanded_literal(paths[0])
    text = _triple_quoted(_ending_in_newline(body))
    if append:
        opened = f'Path({path}).open("a", encoding="utf-8")'
        code = f"with {opened} as file:\n    file.write(\n        {text}\n    )"
    else:
        code = f'Path({path}).write_text(\n    {text},\n    encoding="utf-8",\n)'
    return PlainPython(code, (PATH,))


def _shell_script(shell: str | None, body: str) -> PlainPython:
    script = _triple_quoted(_ending_in_newline(body))
    executable = [f'executable="{shell}"'] if shell else []
    return PlainPython(_printed_run("", script, executable), (SUBPROCESS,))


def _printed_run(indent: str, command: str, options: list[str]) -> str:
    """A shell command run with its output printed, written as ruff formats it (the trailing
    commas keep it so at any indentation)."""
    arguments = [command, "shell=True", "check=True", *SHOWN_OUTPUT, *options]
    lines = [
        "print(",
        "    subprocess.run(",
        *(f"        {argument}," for argument in arguments),
        "    ).stdout,",
        '    end="",',
        ")",
    ]
    return "\n".join(indent + line for line in lines)


def _ending_in_newline(text: str) -> str:
    # IPython hands a cell magic its body with a final newline.
    return text if text.endswith("\n") else text + "\n"


def _words(args: str) -> list[str]:
    try:
        return shlex.split(args)
    except ValueError:
        return args.split()


# line by line


def _line_magics(text: str) -> PlainPython:
    transformed = _ipython_transform(text)
    strings = _string_lines(transformed)
    lines: list[str] = []
    numbers: list[int] = []  # the line of `transformed` each line of `lines` comes from
    imports: dict[Import, None] = {}
    for number, line in enumerate(transformed.split("\n"), start=1):
        if number in strings or "get_ipython()" not in line:
            converted = line
        else:
            converted, needs = _convert_line(line)
            imports.update(dict.fromkeys(needs))
        parts = converted.split("\n")
        lines += parts
        numbers += [number] * len(parts)
    while lines and not lines[0].strip():  # trimmed, as the cell is
        lines, numbers = lines[1:], numbers[1:]
    code = _trimmed("\n".join(lines))
    spread = numbers[: code.count("\n") + 1]
    source_lines = tuple(spread) if spread != list(range(1, len(spread) + 1)) else ()
    return PlainPython(code, tuple(imports), source_lines=source_lines)


def _ipython_transform(text: str) -> str:
    from IPython.core.inputtransformer2 import TransformerManager

    # Line numbers may shift (a `\`-continued `!cmd` becomes one line): generated code only
    # needs each statement, not the cell's numbering.
    try:
        transformed: str = TransformerManager().transform_cell(text)  # type: ignore[no-untyped-call]
    except (SyntaxError, ValueError):  # IPython's tokenizer on broken indentation, say
        return text  # the cell's own parse reports the syntax error, with its line
    return transformed


def _convert_line(line: str) -> tuple[str, tuple[Import, ...]]:
    """One `[target = ]get_ipython().method(...)` line as plain Python, indentation kept."""
    stripped = line.lstrip()
    indent = line[: len(line) - len(stripped)]
    call = _ipython_call(stripped)
    if call is None:
        return line, ()
    prefix, method, args = call
    if method in ("system", "getoutput") and args:
        return _shell_run(indent, prefix, args[0], capture=method == "getoutput")
    if method == "run_line_magic" and len(args) == 2:
        return _line_magic(indent, prefix, args[0], args[1])
    return indent + _left_out(stripped), ()


def _ipython_call(line: str) -> tuple[str, str, list[str]] | None:
    """(the `target = ` text, the method, its string arguments) of a get_ipython() call line."""
    try:
        tree = ast.parse(line)
    except SyntaxError:
        return None
    if len(tree.body) != 1:
        return None
    statement = tree.body[0]
    one_target = not isinstance(statement, ast.Assign) or len(statement.targets) == 1
    if not isinstance(statement, (ast.Assign, ast.Expr)) or not one_target:
        return None
    value = statement.value
    if not (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and isinstance(value.func.value, ast.Call)
        and isinstance(value.func.value.func, ast.Name)
        and value.func.value.func.id == "get_ipython"
    ):
        return None
    args = [a.value for a in value.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    return line[: value.col_offset], value.func.attr, args


def _line_magic(indent: str, prefix: str, name: str, arg: str) -> tuple[str, tuple[Import, ...]]:
    if name in STATEMENT_MAGICS and arg.strip():
        return indent + prefix + without_magic_options(arg.strip()), ()
    if name in CAPTURE_MAGICS and arg.strip():
        return _shell_run(indent, prefix, arg, capture=True)
    shown = HELP_MAGICS.get(name, f"%{name} {{}}").format(arg).strip()
    return indent + _left_out(prefix + shown), ()


def _shell_run(
    indent: str, prefix: str, command: str, *, capture: bool
) -> tuple[str, tuple[Import, ...]]:
    """`!cmd` runs the command; `x = !cmd` and `!!cmd` also keep its output lines."""
    if INSTALL_COMMAND.match(command):
        shown = f"{prefix}!{command} (list packages in the build's requirements)"
        return indent + _left_out(shown), ()
    # Values put into the command are quoted: a parameter set with -p or through the REST API
    # is not the notebook author's text, and must stay one word to the shell.
    literal = _expanded_literal(command, quoted=True)
    imports = (SUBPROCESS, SHLEX) if "shlex.quote(" in literal else (SUBPROCESS,)
    if capture:
        options = "shell=True, capture_output=True, text=True, check=True"
        run = f"subprocess.run({literal}, {options}).stdout.splitlines()"
    else:
        return _printed_run(indent, literal, []), imports
    return indent + prefix + run, imports


def _left_out(what: str) -> str:
    return f"pass  # IPython magic left out: {what}"


# string literals, written the way ruff format writes them


def _expanded_literal(text: str, *, quoted: bool = False) -> str:
    """`text` as IPython expands it: an f-string when it holds `{expr}` or `$name`, else text.
    `quoted` passes each value through `shlex.quote`, for a shell command."""
    parts: list[tuple[str, bool]] = []  # (text, is_expression)
    position = 0
    for match in SHELL_FIELD.finditer(text):
        parts.append((text[position : match.start()], False))
        position = match.end()
        token, expression, name = match.group(0), match.group(1), match.group(2)
        if expression is not None:
            parts.append((expression, True))
        elif name is not None and not name.isupper():  # `$HOME` is the shell's to expand
            parts.append((name, True))
        else:
            parts.append(({"{{": "{", "}}": "}", "$$": "$"}.get(token, token), False))
    parts.append((text[position:], False))
    if not any(is_expression for _, is_expression in parts):
        return string_literal("".join(part for part, _ in parts))
    if not all(_is_field(part) for part, is_expression in parts if is_expression):
        return string_literal(text)  # IPython, too, leaves a command it cannot expand alone
    if quoted:
        parts = [
            (_shell_quoted(part) if is_expression else part, is_expression)
            for part, is_expression in parts
        ]
    return _fstring(parts)


def _shell_quoted(field: str) -> str:
    """The f-string field `x`, `x!r` or `x:>5` as one that yields the value shell-quoted."""
    tree = ast.parse(f"f'{{{field}}}'" if "'" not in field else f'f"{{{field}}}"', mode="eval")
    assert isinstance(tree.body, ast.JoinedStr)
    value = tree.body.values[0]
    assert isinstance(value, ast.FormattedValue)
    text = ast.unparse(value.value)
    converted = {ord("r"): "repr", ord("a"): "ascii"}.get(value.conversion, "str")
    spec = value.format_spec
    if spec is None:
        return f"shlex.quote({converted}({text}))"
    if isinstance(spec, ast.JoinedStr) and all(isinstance(p, ast.Constant) for p in spec.values):
        shown = "".join(str(part.value) for part in spec.values if isinstance(part, ast.Constant))
        inner = text if converted == "str" else f"{converted}({text})"
        return f"shlex.quote(format({inner}, {shown!r}))"
    return field  # a computed format spec: left as IPython writes it


def _is_field(text: str) -> bool:
    """Whether `{text}` is an f-string field (`x`, `x!r`, `len(x):>5`).

    A bare tuple is not: `cp a.{txt,bak}` is the shell's brace expansion, which IPython
    leaves alone when it cannot evaluate `txt,bak`.
    """
    try:
        tree = ast.parse(f"f'{{{text}}}'" if "'" not in text else f'f"{{{text}}}"', mode="eval")
    except SyntaxError:
        return False
    field = tree.body.values[0] if isinstance(tree.body, ast.JoinedStr) else None
    return isinstance(field, ast.FormattedValue) and not (
        isinstance(field.value, ast.Tuple) and "(" not in text
    )


def _fstring(parts: list[tuple[str, bool]]) -> str:
    expressions = "".join(part for part, is_expression in parts if is_expression)
    literal = "".join(part for part, is_expression in parts if not is_expression)
    preferred = "'" if literal.count('"') > literal.count("'") else '"'
    for quote in (preferred, "'" if preferred == '"' else '"'):
        # Before Python 3.12 an f-string's fields cannot hold its quote or a backslash.
        if quote not in expressions and "\\" not in expressions:
            body = "".join(
                f"{{{part}}}" if is_expression else _escaped(part, quote, braces=True)
                for part, is_expression in parts
            )
            return f"f{quote}{body}{quote}"
    values: list[ast.expr] = [
        ast.FormattedValue(ast.parse(part, mode="eval").body, -1, None)
        if is_expression
        else ast.Constant(part)
        for part, is_expression in parts
    ]
    return ast.unparse(ast.JoinedStr(values))


def string_literal(text: str) -> str:
    """Double quotes unless the text holds more double than single quotes, as ruff prefers."""
    quote = "'" if text.count('"') > text.count("'") else '"'
    return f"{quote}{_escaped(text, quote)}{quote}"


def _escaped(text: str, quote: str, *, braces: bool = False) -> str:
    named = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", quote: "\\" + quote}
    if braces:  # literal braces in an f-string
        named.update({"{": "{{", "}": "}}"})
    return "".join(named.get(c, c if c.isprintable() else repr(c)[1:-1]) for c in text)


def _triple_quoted(text: str) -> str:
    """A multi-line literal that reads like the text: `\"\"\"\\` then the lines as they are."""
    escaped = "".join(
        c if c in "\n\t" or c.isprintable() else repr(c)[1:-1] for c in text.replace("\\", "\\\\")
    )
    for quote in ('"""', "'''"):
        if quote not in escaped and not escaped.endswith(quote[0]):
            return f"{quote}\\\n{escaped}{quote}"
    return '"""\\\n' + escaped.replace('"', '\\"') + '"""'


# where the multi-line strings are


def _string_lines(code: str) -> set[int]:
    """Lines (1-based) that lie inside a multi-line string, not counting statement strings."""
    try:
        syntax = ast.parse(code), 0
    except (SyntaxError, ValueError):
        return set()
    return _string_lines_of(code, syntax)


def _string_lines_of(code: str, syntax: tuple[ast.Module, int] | None) -> set[int]:
    """`_string_lines` given the code's tree and line offset (None: the code does not parse)."""
    if syntax is None:
        return set()
    tree, offset = syntax
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except tokenize.TokenError:
        return set()
    inside: set[int] = set()
    fstring_starts: list[int] = []
    for token in tokens:
        if token.type == FSTRING_START:
            fstring_starts.append(token.start[0])
        elif token.type == FSTRING_END and fstring_starts:
            inside.update(range(fstring_starts.pop() + 1, token.end[0] + 1))
        elif token.type == tokenize.STRING:
            inside.update(range(token.start[0] + 1, token.end[0] + 1))
    return inside - _statement_string_lines(tree, offset)


def _statement_string_lines(tree: ast.Module, offset: int = 0) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            end = node.end_lineno or node.lineno
            lines.update(range(node.lineno + 1 - offset, end + 1 - offset))
    return lines
