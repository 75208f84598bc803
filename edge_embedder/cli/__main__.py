"""``python -m edge_embedder.cli`` runs the ``edge-embedder`` command line."""

import sys

from .main import main

sys.exit(main())
