"""``python -m modelyard`` runs the ``yard`` command line."""

import sys

from modelyard.data._quick import try_unchanged_add

# `yard data add` of an unchanged path answers before Typer and SQLAlchemy are imported
if not try_unchanged_add(sys.argv[1:]):
    from modelyard.cli import main

    main()
