"""The model: a notebook read into the pure `Pipeline` (steps, artifacts, parameters, endpoints,
tests, metrics, diagnostics) and its lineage exports.

Holds notebook loading and schema checks, the tag grammar, sections, each cell's Python parsed
once (`python_source`, `plain_python`), dataflow, analysis and lineage. Pure: reads the notebook
text it is given, runs no user code, starts no process, opens no socket.

May import: only `nbops.model`, `nbops.errors` and the standard library or parsing libraries.
"""
