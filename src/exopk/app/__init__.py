"""A local web page for people who do not code: ``exopk app`` (standard library HTTP server).

The page's logic is plain Python (:mod:`exopk.app.form`, :mod:`exopk.app.compute`,
:mod:`exopk.app.reproduce`), served by :mod:`exopk.app.server` as one static HTML page and a
small JSON API; figures are drawn by matplotlib. See ``docs/app.md``.
"""

from exopk.app.compute import LIMITS, RunOutput, run, scale_body_weight
from exopk.app.form import FormError, RunSpec, parse_form
from exopk.app.reproduce import cli_commands, cli_text, python_code
from exopk.app.server import DEFAULT_HOST, DEFAULT_PORT, AppServer, make_server, serve, start_in_thread

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "LIMITS",
    "AppServer",
    "FormError",
    "RunOutput",
    "RunSpec",
    "cli_commands",
    "cli_text",
    "make_server",
    "parse_form",
    "python_code",
    "run",
    "scale_body_weight",
    "serve",
    "start_in_thread",
]
