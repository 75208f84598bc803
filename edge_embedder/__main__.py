"""``python -m edge_embedder`` runs the ``edge-embedder`` command line."""

import sys

from .cli import main

sys.exit(main())
