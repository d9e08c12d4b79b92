"""nbops's jupyter_server extension: the REST API the JupyterLab sidebar and scripts call.

Importing this package stays cheap (jupyter_server and tornado load only when the server loads
the extension), because the kernel-side widgets import its jobs module too.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "nbops.lab.server"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    from nbops.lab.server.routes import setup_handlers

    setup_handlers(server_app)
