"""pytest-jupyter's jupyter_server fixtures, for the tests of this folder only.

Imported here rather than named in `pytest_plugins`, which would make its autouse fixtures (an
event loop and a ServerApp cleanup per test) and its test-call hook apply to the whole suite.
"""

from pytest_jupyter.jupyter_server import *  # noqa: F403
