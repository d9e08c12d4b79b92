"""The Jupyter face: the jupyter_server extension (REST API for the sidebar), the ipywidgets and
the `%nbops` magics. Handlers stay thin: they call the same functions the CLI calls.

May import: every layer below (`model`, `run`, `ci`, `build`, `deploy`) and `nbops.lab`.
"""
