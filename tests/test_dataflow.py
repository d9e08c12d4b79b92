"""The names a piece of Python reads, writes and mutates, each at its first line."""

from __future__ import annotations

import ast
import textwrap

import pytest

from nbops.model.dataflow import FunctionNames, Names, scan


def names_of(source: str) -> Names:
    """Scan dedented source; a leading newline is dropped so line 1 is the first line of code."""
    return scan(ast.parse(textwrap.dedent(source).removeprefix("\n")))


def test_an_empty_module_uses_no_names() -> None:
    assert scan(ast.parse("")) == Names()


# assignments


@pytest.mark.parametrize(
    ("source", "reads", "writes"),
    [
        ("x = a", {"a": 1}, {"x": 1}),
        ("a, (b, c) = t", {"t": 1}, {"a": 1, "b": 1, "c": 1}),
        ("[d, e] = u", {"u": 1}, {"d": 1, "e": 1}),
        ("f, *g = v", {"v": 1}, {"f": 1, "g": 1}),
        ("h = i = j", {"j": 1}, {"h": 1, "i": 1}),
        ("n: int = m", {"int": 1, "m": 1}, {"n": 1}),
        # A bare annotation binds nothing: `n` is still undefined afterwards.
        ("n: int", {"int": 1}, {}),
    ],
    ids=["simple", "tuple", "list", "starred", "chained", "annotated", "annotation-only"],
)
def test_assignment_targets_are_writes_and_values_are_reads(
    source: str, reads: dict[str, int], writes: dict[str, int]
) -> None:
    names = names_of(source)
    assert names.reads == reads
    assert names.writes == writes
    assert names.mutations == {}


def test_an_attribute_target_mutates_its_root_and_binds_nothing() -> None:
    names = names_of("cfg.optimizer.lr = rate")
    assert names.reads == {"rate": 1, "cfg": 1}
    assert names.writes == {}
    assert names.mutations == {"cfg": 1}


def test_a_subscript_target_mutates_its_root_and_reads_the_index() -> None:
    names = names_of("table[row][col] = value")
    assert list(names.reads) == ["value", "table", "row", "col"]  # value first, like Python
    assert names.writes == {}
    assert names.mutations == {"table": 1}


def test_an_annotated_attribute_target_with_a_value_is_a_mutation() -> None:
    names = names_of("obj.a: int = 1")
    assert names.mutations == {"obj": 1}
    assert names.writes == {}


def test_an_annotated_attribute_target_without_a_value_only_reads() -> None:
    # Python evaluates `obj` and the index but calls no __setattr__ / __setitem__.
    names = names_of("obj.a: int\nd[k]: str")
    assert names.reads == {"int": 1, "obj": 1, "str": 2, "d": 2, "k": 2}
    assert names.mutations == {}
    assert names.writes == {}


def test_an_annotation_inside_a_function_body_is_not_evaluated() -> None:
    names = names_of(
        """
        def build():
            net: Tensor = make()
            return net
        """
    )
    assert names.deferred_reads == {"make": 2}
    assert names.reads == {}


# augmented assignment and del


def test_augmented_assignment_reads_then_writes_the_name() -> None:
    names = names_of("total += step")
    assert list(names.reads) == ["total", "step"]
    assert names.writes == {"total": 1}
    assert names.mutations == {}


@pytest.mark.parametrize(
    ("source", "root"), [('counts["k"] += 1', "counts"), ("stats.n += 1", "stats")]
)
def test_augmented_assignment_to_a_subscript_or_attribute_mutates_the_root(
    source: str, root: str
) -> None:
    names = names_of(source)
    assert names.reads == {root: 1}
    assert names.writes == {}
    assert names.mutations == {root: 1}


def test_del_of_a_name_reads_it_and_counts_as_a_write() -> None:
    names = names_of("del scratch")
    assert names.reads == {"scratch": 1}
    assert names.writes == {"scratch": 1}


def test_del_of_a_name_this_code_bound_reads_nothing() -> None:
    names = names_of("tmp = 1\ndel tmp")
    assert names.reads == {}
    assert names.writes == {"tmp": 1}


def test_del_of_a_subscript_or_attribute_mutates_the_root() -> None:
    names = names_of('del df["c"]\ndel obj.attr')
    assert names.reads == {"df": 1, "obj": 2}
    assert names.writes == {}
    assert names.mutations == {"df": 1, "obj": 2}


# statements that bind: for, with, except, walrus


def test_for_targets_are_writes_and_the_iterable_is_read() -> None:
    names = names_of(
        """
        for i, row in rows:
            acc = acc + row
        else:
            done = flag
        """
    )
    assert names.reads == {"rows": 1, "acc": 2, "flag": 4}
    assert names.writes == {"i": 1, "row": 1, "acc": 2, "done": 4}


def test_async_for_targets_are_writes() -> None:
    # Notebooks run top-level async code, and ast.parse accepts it.
    names = names_of(
        """
        async for batch in stream:
            seen = batch
        """
    )
    assert names.reads == {"stream": 1}
    assert names.writes == {"batch": 1, "seen": 2}


def test_with_targets_are_writes_and_context_expressions_are_read() -> None:
    names = names_of(
        """
        with open(path) as fh, lock, ctx() as (a, b):
            text = fh.read()
        """
    )
    assert names.reads == {"open": 1, "path": 1, "lock": 1, "ctx": 1}
    assert names.writes == {"fh": 1, "a": 1, "b": 1, "text": 2}


def test_async_with_targets_are_writes() -> None:
    names = names_of(
        """
        async with session.get(url) as response:
            body = await response.text()
        """
    )
    assert names.reads == {"session": 1, "url": 1}
    assert names.writes == {"response": 1, "body": 2}


def test_except_as_binds_the_name_and_the_exception_type_is_read() -> None:
    names = names_of(
        """
        try:
            v = risky()
        except ValueError as err:
            v = fallback(err)
        """
    )
    assert names.reads == {"risky": 2, "ValueError": 3, "fallback": 4}
    assert names.writes == {"v": 2, "err": 3}


def test_a_walrus_binds_at_module_level() -> None:
    names = names_of(
        """
        if (n := len(xs)) > 3:
            big = n
        """
    )
    assert names.reads == {"len": 1, "xs": 1}
    assert names.writes == {"n": 1, "big": 2}


def test_a_walrus_in_a_comprehension_binds_in_the_enclosing_scope() -> None:
    names = names_of("vals = [last := f(x) for x in data]\nprint(last)")
    assert names.reads == {"data": 1, "f": 1, "print": 2}
    assert names.writes == {"last": 1, "vals": 1}


def test_a_walrus_in_a_comprehension_inside_a_function_stays_local() -> None:
    names = names_of(
        """
        def f():
            vals = [last := g(x) for x in data]
            return last
        """
    )
    assert names.writes == {"f": 1}
    assert names.deferred_reads == {"data": 2, "g": 2}


# imports


def test_imports_bind_the_name_the_statement_introduces() -> None:
    names = names_of(
        """
        import a.b
        import c as d
        from e import f as g, h
        """
    )
    assert names.writes == {"a": 1, "d": 2, "g": 3, "h": 3}
    assert names.imports == frozenset({"a", "d", "g", "h"})
    assert names.reads == {}
    assert not names.opaque


def test_a_star_import_makes_the_code_opaque() -> None:
    names = names_of("from helpers import *")
    assert names.opaque
    assert names.writes == {}
    assert names.imports == frozenset()


def test_a_conditional_import_is_still_an_import() -> None:
    names = names_of(
        """
        try:
            import ujson as json
        except ImportError:
            import json
        """
    )
    assert names.imports == frozenset({"json"})
    assert names.writes == {"json": 2}


def test_an_import_inside_a_function_binds_nothing_at_module_level() -> None:
    names = names_of(
        """
        def load():
            import pandas as pd
            return pd.read_csv(path)
        """
    )
    assert names.imports == frozenset()
    assert names.writes == {"load": 1}
    assert names.deferred_reads == {"path": 3}


# functions and lambdas


def brief(function: FunctionNames) -> tuple[str, int, dict[str, int]]:
    return function.name, function.line, function.free


def test_a_function_def_writes_its_name_and_defers_its_body() -> None:
    names = names_of(
        """
        @register(registry)
        def score(frame: pd.DataFrame, k=K, *rest, scale: float = SCALE, **opts) -> Report:
            total = frame[column].sum() * k * scale
            return Report(total, threshold, rest, opts)
        """
    )
    # Decorators, defaults and annotations run when the def runs.
    assert list(names.reads) == ["register", "registry", "K", "SCALE", "pd", "float", "Report"]
    assert names.reads["K"] == 2
    # Parameters and locals are not reads; free names of the body are read when called.
    assert names.deferred_reads == {"column": 3, "Report": 4, "threshold": 4}
    assert names.writes == {"score": 2}
    assert [brief(f) for f in names.functions] == [
        ("score", 2, {"column": 3, "Report": 4, "threshold": 4})
    ]


def test_an_async_function_is_a_function() -> None:
    names = names_of(
        """
        async def fetch(url):
            return await client.get(url)
        """
    )
    assert names.writes == {"fetch": 1}
    assert [brief(f) for f in names.functions] == [("fetch", 1, {"client": 2})]


def test_a_function_reading_a_global_this_code_binds_still_defers_the_read() -> None:
    # The read happens at call time, when a later cell may have rebound the name.
    names = names_of(
        """
        THRESHOLD = 0.5
        def classify(p):
            return p > THRESHOLD
        """
    )
    assert names.reads == {}
    assert names.deferred_reads == {"THRESHOLD": 3}


def test_nested_function_free_names_belong_to_the_top_level_function() -> None:
    names = names_of(
        """
        def outer(a):
            def inner(b):
                return a + b + offset
            return inner
        """
    )
    assert names.writes == {"outer": 1}
    assert names.deferred_reads == {"offset": 3}
    assert [brief(f) for f in names.functions] == [("outer", 1, {"offset": 3})]


def test_a_function_defined_inside_if_is_top_level() -> None:
    names = names_of(
        """
        if fast:
            def run():
                return engine
        """
    )
    assert names.reads == {"fast": 1}
    assert [brief(f) for f in names.functions] == [("run", 2, {"engine": 3})]


def test_global_assignments_inside_a_function_are_module_writes() -> None:
    names = names_of(
        """
        def bump():
            global counter, history
            counter += 1
            history = []
            local_total = 0
        """
    )
    assert names.writes == {"bump": 1, "counter": 3, "history": 4}
    assert names.deferred_reads == {"counter": 3}
    assert names.reads == {}


def test_a_global_declared_in_a_nested_function_is_a_module_write() -> None:
    names = names_of(
        """
        def top():
            def inner():
                global cache
                cache = {}
            return inner
        """
    )
    assert names.writes == {"top": 1, "cache": 4}


def test_nonlocal_names_resolve_to_the_enclosing_function() -> None:
    names = names_of(
        """
        def outer():
            n = 0
            def inner():
                nonlocal n
                n += 1
                return n + m
            return inner
        """
    )
    assert names.writes == {"outer": 1}
    assert names.deferred_reads == {"m": 6}
    assert names.reads == {}


def test_a_lambda_defers_its_body_and_reads_its_defaults_now() -> None:
    names = names_of("f = lambda a, b=dflt: a + b + c")
    assert names.reads == {"dflt": 1}
    assert names.deferred_reads == {"c": 1}
    assert names.writes == {"f": 1}
    assert names.functions == ()  # only `def`s are functions


def test_a_lambda_inside_a_top_level_function_adds_to_its_free_names() -> None:
    names = names_of(
        """
        def rank(rows):
            return sorted(rows, key=lambda r: r[column])
        """
    )
    assert [brief(f) for f in names.functions] == [("rank", 1, {"sorted": 2, "column": 2})]


# classes


def test_a_class_body_runs_now_and_its_methods_run_later() -> None:
    names = names_of(
        """
        @dataclass
        class Model(Base, metaclass=Meta):
            x = 1
            y = x + k
            def predict(self, data):
                self.last = data
                return x + self.y
        z = Model
        """
    )
    assert names.reads == {"dataclass": 1, "Base": 2, "Meta": 2, "k": 4}
    # Class-level names are not visible inside methods: `x` there is a global.
    assert names.deferred_reads == {"x": 7}
    assert names.writes == {"Model": 2, "z": 8}
    assert names.mutations == {}
    assert [(brief(f), f.is_class) for f in names.functions] == [(("Model", 2, {"x": 7}), True)]


def test_class_annotations_are_read_and_bind_nothing_at_module_level() -> None:
    names = names_of(
        """
        class Config:
            n: int
            rate: float = 0.1
        """
    )
    assert names.reads == {"int": 2, "float": 3}
    assert names.writes == {"Config": 1}


# comprehensions


def test_comprehension_targets_are_neither_reads_nor_writes() -> None:
    names = names_of("ys = [x * k for x in xs if x > lo]")
    assert list(names.reads) == ["xs", "lo", "k"]
    assert names.writes == {"ys": 1}


@pytest.mark.parametrize(
    "source",
    [
        "r = {x: x * k for x in xs}",
        "r = {x * k for x in xs}",
        "r = sum(x * k for x in xs)",
        "r = {a: b * k for a, b in xs}",
    ],
)
def test_every_kind_of_comprehension_has_its_own_scope(source: str) -> None:
    names = names_of(source)
    assert set(names.reads) - {"sum"} == {"xs", "k"}
    assert names.writes == {"r": 1}


def test_later_iterables_see_earlier_comprehension_targets() -> None:
    names = names_of("pairs = [(i, j) for i in rows for j in cols(i)]")
    assert names.reads == {"rows": 1, "cols": 1}
    assert names.writes == {"pairs": 1}


def test_a_comprehension_reuses_a_name_without_touching_the_module_one() -> None:
    names = names_of("x = 0\nys = [x for x in xs]\nz = x")
    assert names.reads == {"xs": 2}
    assert names.writes == {"x": 1, "ys": 2, "z": 3}


def test_a_comprehension_in_a_function_defers_its_first_iterable() -> None:
    names = names_of(
        """
        def squares():
            return [v * v for v in values]
        """
    )
    assert names.reads == {}
    assert names.deferred_reads == {"values": 2}


# match statements


def test_match_capture_patterns_bind_and_class_and_value_patterns_read() -> None:
    names = names_of(
        """
        match command:
            case Point(x=0, y=yy):
                r = yy
            case [first, *rest]:
                r = first
            case {"k": v, **others}:
                r = v
            case Color.RED | Color.BLUE as c:
                r = c
            case _:
                r = default
        """
    )
    assert names.reads == {"command": 1, "Point": 2, "Color": 8, "default": 11}
    assert names.writes == {
        "yy": 2,
        "r": 3,
        "first": 4,
        "rest": 4,
        "v": 6,
        "others": 6,
        "c": 8,
    }


# in-place mutation


@pytest.mark.parametrize(
    ("source", "root"),
    [
        ('df["x"] = 1', "df"),
        ("df.a = 2", "df"),
        ('df.loc[df.y > 0, "y"] = 0', "df"),
        ('del df["x"]', "df"),
        ('df.drop(columns=["a"], inplace=True)', "df"),
        ("df.sort_values('a', inplace=True)", "df"),
        ("lst.append(x)", "lst"),
        ("lst.extend(more)", "lst"),
        ("seen.add(item)", "seen"),
        ("config.update(overrides)", "config"),
        ("model.fit(X, y)", "model"),
        ("scaler.fit_transform(X)", "scaler"),
        ("net.load_state_dict(weights)", "net"),
        ('counts["k"] += 1', "counts"),
        ("pipe.steps[0].fit(X)", "pipe"),
    ],
)
def test_in_place_changes_are_mutations_of_the_root_name(source: str, root: str) -> None:
    names = names_of(source)
    assert names.mutations == {root: 1}
    assert root in names.reads  # the value must exist before it is changed
    assert names.writes == {}


def test_a_mutating_method_on_an_imported_module_is_recorded_as_a_mutation() -> None:
    # `np.append` returns a new array, but statically it looks like `lst.append`; the analysis
    # drops imported names from mutations, so scan reports it as it sees it.
    names = names_of("import numpy as np\nout = np.append(arr, 1)")
    assert names.mutations == {"np": 2}
    assert names.reads == {"arr": 2}
    assert names.imports == frozenset({"np"})


@pytest.mark.parametrize(
    "source",
    [
        'clean = df.drop(columns=["a"])',
        'clean = df.drop(columns=["a"], inplace=False)',
        "fitted = make_model().fit(X)",  # the root is a call, not a name
        "ordered = sorted(items)",
        "value = df['x']",
    ],
)
def test_calls_and_reads_that_return_new_values_are_not_mutations(source: str) -> None:
    assert names_of(source).mutations == {}


def test_mutating_a_name_this_code_bound_is_a_mutation_but_not_a_read() -> None:
    names = names_of('df = load()\ndf["x"] = 1')
    assert names.reads == {"load": 1}
    assert names.writes == {"df": 1}
    assert names.mutations == {"df": 2}


def test_mutating_a_parameter_or_local_inside_a_function_is_not_a_mutation() -> None:
    names = names_of(
        """
        def prepare(frame):
            frame["x"] = 1
            parts = []
            parts.append(frame)
            return parts
        """
    )
    assert names.mutations == {}


def test_mutating_a_global_inside_a_function_is_charged_to_the_defining_code() -> None:
    # Approximation, the same one `global x` assignments make: a cell that defines a helper
    # changing a global usually calls it too, and charging the definition keeps the write
    # visible, where dropping it would hand later steps the unchanged value.
    names = names_of(
        """
        def log(row):
            history.append(row)
        """
    )
    assert names.mutations == {"history": 2}
    assert names.deferred_reads == {"history": 2}
    assert names.reads == {}


def test_a_method_changing_self_is_not_a_mutation() -> None:
    names = names_of(
        """
        class Tracker:
            def fit(self, X):
                self.mean = X.mean()
                self.seen.append(X)
        """
    )
    assert names.mutations == {}


# read-before-write ordering and control flow


def test_a_name_read_before_this_code_writes_it_is_a_read() -> None:
    assert names_of("x = x + 1").reads == {"x": 1}
    assert names_of("print(a)\na = 1").reads == {"print": 1, "a": 1}


def test_a_name_read_after_this_code_writes_it_is_not_a_read() -> None:
    names = names_of("y = 1\nz = y")
    assert names.reads == {}
    assert names.writes == {"y": 1, "z": 2}


def test_reads_are_in_evaluation_order_with_their_first_line() -> None:
    names = names_of("result = transform(frame, factor)\nagain = factor + extra")
    assert list(names.reads) == ["transform", "frame", "factor", "extra"]
    assert names.reads["factor"] == 1


def test_reads_inside_if_while_and_try_bodies_count() -> None:
    names = names_of(
        """
        if ready:
            a = b
        elif other:
            a = c
        while keep_going:
            a = q
        try:
            t = r1
        except Exception:
            t = r2
        else:
            t = r3
        finally:
            t = r4
        """
    )
    assert names.reads == {
        "ready": 1,
        "b": 2,
        "other": 3,
        "c": 4,
        "keep_going": 5,
        "q": 6,
        "r1": 8,
        "Exception": 9,
        "r2": 10,
        "r3": 12,
        "r4": 14,
    }
    assert names.writes == {"a": 2, "t": 8}


def test_a_write_in_one_branch_counts_as_binding_for_later_reads() -> None:
    # Approximation: a name bound on any path is treated as bound. The alternative, reading
    # it from an earlier step too, would invent a dependency for every `if`-guarded default.
    names = names_of(
        """
        if refresh:
            data = fetch()
        print(data)
        """
    )
    assert names.reads == {"refresh": 1, "fetch": 2, "print": 3}
    assert names.writes == {"data": 2}


def test_f_strings_read_their_fields() -> None:
    assert names_of('msg = f"{name}: {value!r:>{width}}"').reads == {
        "name": 1,
        "value": 1,
        "width": 1,
    }


def test_only_the_first_iterable_of_a_generator_runs_now_but_all_count_as_reads() -> None:
    # Approximation: generators in notebooks are consumed on the spot (`sum(...)`, `list(...)`),
    # so the names their later clauses read are treated as read now.
    names = names_of("g = (i for i in range(n) for j in other(i))")
    assert names.reads == {"range": 1, "n": 1, "other": 1}
    assert names.deferred_reads == {}


# IPython calls, as IPython's transformer writes them


def test_a_shell_call_reads_braced_expressions_and_dollar_names() -> None:
    names = names_of("get_ipython().system('ls {data_dir / name} $other')")
    assert names.reads == {"data_dir": 1, "name": 1, "other": 1}
    assert names.writes == {}


def test_escaped_braces_and_dollars_in_a_shell_call_read_nothing() -> None:
    names = names_of("get_ipython().system('echo {{literal}} $$HOME; find . -exec rm {} +')")
    assert names.reads == {}


def test_a_line_magic_argument_expands_names() -> None:
    names = names_of("get_ipython().run_line_magic('cd', '{work_dir}')")
    assert names.reads == {"work_dir": 1}


def test_a_python_line_magic_is_analysed_as_python_on_its_line() -> None:
    names = names_of("x = 1\n\nget_ipython().run_line_magic('time', 'y = f(x, z)')")
    assert names.reads == {"f": 3, "z": 3}
    assert names.writes == {"x": 1, "y": 3}


@pytest.mark.parametrize("magic", ["run", "load", "store"])
def test_magics_that_bring_unseen_names_make_the_code_opaque(magic: str) -> None:
    names = names_of(f"get_ipython().run_line_magic('{magic}', 'other.py')")
    assert names.opaque
    assert names.reads == {}


def test_other_line_magics_read_nothing_and_are_not_opaque() -> None:
    names = names_of("get_ipython().run_line_magic('matplotlib', 'inline')")
    assert names == Names()
