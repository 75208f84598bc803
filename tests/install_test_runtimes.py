"""Install the interpreters that some tests need beside the main environment (part of the README's test step).

    python tests/install_test_runtimes.py [--sites DIR]

The tflite-runtime install route (``tests/test_installed_cli.py``) runs the
installed package on ``tflite-runtime`` 2.14.0, the interpreter for boards
where ``ai-edge-litert`` has no wheel. That package is built for NumPy 1.x, so
it cannot live in the development environment (numpy 2): it goes, with
``--no-deps``, into folders of its own that the tests put on ``PYTHONPATH``:

* ``DIR/tflite_runtime``: tflite-runtime 2.14.0;
* ``DIR/numpy1``: numpy<2 and an OpenCV built for it (opencv-python-headless 4.10.0.84).

``DIR`` is ``$EDGE_EMBEDDER_TEST_SITES`` or ``~/.cache/edge_embedder_test_sites``.
Folders that are already complete are kept (a second run installs nothing).
Needs PyPI (pip); the tests themselves never use the network.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

#: folder name -> (requirements, the package folder that marks a complete install)
SITES = {
    "tflite_runtime": (["tflite-runtime==2.14.0"], "tflite_runtime"),
    "numpy1": (["numpy<2", "opencv-python-headless==4.10.0.84"], "numpy"),
}


def default_sites() -> Path:
    return Path(os.environ.get("EDGE_EMBEDDER_TEST_SITES", Path.home() / ".cache" / "edge_embedder_test_sites"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=Path, default=default_sites(), help="where the folders go (default: %(default)s)")
    args = ap.parse_args(argv)
    for name, (requirements, marker) in SITES.items():
        target = args.sites / name
        if (target / marker).is_dir():
            print(f"{target}: present")
            continue
        tmp = args.sites / f".{name}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(tmp), *requirements],
                       check=True)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)  # complete or absent: an interrupted install is never mistaken for a finished one
        print(f"{target}: installed {' '.join(requirements)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
