"""``python -m exopk`` runs the command line."""

from exopk.cli.main import main

raise SystemExit(main())
