"""The ``exopk`` command line: one module per command, one dispatch (:func:`main`)."""

from exopk.cli.main import main

__all__ = ["main"]
