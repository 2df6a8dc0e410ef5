"""``python -m monitor`` runs the same command line as the ``liqmon`` script."""

from monitor.cli import main

raise SystemExit(main())
