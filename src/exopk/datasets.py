"""``exopk.datasets``: the shipped literature datasets (the module lives in :mod:`exopk.io.datasets`)."""

from exopk.io.datasets import *  # noqa: F403
from exopk.io.datasets import __all__  # noqa: F401
