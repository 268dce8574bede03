"""``python -m pytest_aibench``: the ``aibench`` command."""

from .cli import main

raise SystemExit(main())
