"""``python -m modelyard`` runs the ``yard`` command line."""

from modelyard.cli import main

main()
