"""``exopk app``: serve the local web page (see :mod:`exopk.app`)."""

from __future__ import annotations

import argparse

NAME = "app"


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`--port` must be a whole number from 0 to 65535; got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"`--port` must be a whole number from 0 to 65535; got {text!r}")
    return port


def add_parser(commands) -> argparse.ArgumentParser:
    """Register ``exopk app`` on the CLI's subparsers."""
    from exopk.app.server import DEFAULT_HOST, DEFAULT_PORT

    cmd = commands.add_parser(
        NAME,
        help="open the exopk web page in a browser (a local server; no coding needed)",
        description="Start a local web server with the exopk page and open it in the default browser. "
        "It listens on 127.0.0.1 only (this computer) unless --host says otherwise. Ctrl-C stops it.",
    )
    cmd.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"interface to listen on (default {DEFAULT_HOST}: this computer only; 0.0.0.0 shares it on your network)",
    )
    cmd.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)"
    )
    cmd.add_argument("--no-browser", action="store_true", help="print the URL but do not open a browser")
    cmd.add_argument("--verbose", action="store_true", help="log every request on stderr")
    return cmd


def run(args) -> int:
    """Serve until interrupted; returns the exit status."""
    from exopk.app.server import serve
    from exopk.errors import ExopkError

    try:
        return serve(args.host, args.port, open_browser=not args.no_browser, quiet=not args.verbose)
    except OSError as err:
        raise ExopkError(f"cannot listen on {args.host}:{args.port}: {err.strerror or err} (try --port 0)") from None
