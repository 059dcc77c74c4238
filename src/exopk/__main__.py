"""``python -m exopk`` runs the command line."""

from exopk.cli import main

raise SystemExit(main())
