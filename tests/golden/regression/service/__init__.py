"""The regression service: a FastAPI app serving the `serve` functions of regression.ipynb.

Run it from the build folder with `nbops serve .` or `uvicorn service.main:app`. `main` assembles
the app; `routes` has a route per serve function and `operations` the probes, metrics,
monitoring and version; `artifacts` loads what the functions read and checks it against
nbops.json; `monitoring` keeps each route's window of recent requests and scores its drift from
the reference profile, binned by `profile` (a verbatim copy of nbops's).

Generated from regression.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""
