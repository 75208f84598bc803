"""``edge-embedder models`` and ``edge-embedder samples``: what ships inside the package, usable from any folder.

``models`` lists the shipped models (name, task, size, sha256, path); every
command's ``--model`` takes those names. ``samples`` lists the bundled photos
and, with ``--copy DIR``, copies them into a folder, so that examples can run
from anywhere.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..exit_codes import ExitCode
from .common import add_output_args, write_output


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("models", help="list the shipped models: name, task, size, sha256, path",
                       description="List the models that ship inside the package. Every --model (and inspect, "
                       "bench) accepts these names as well as model files.")
    add_output_args(p, ("text", "json"), file_help="write to this file (atomically) instead of stdout",
                    format_help="text (default: one row per model) or json (a list)")
    p.set_defaults(func=run_models)
    p = sub.add_parser("samples", help="list the bundled sample photos, or copy them into a folder (--copy DIR)",
                       description="The sample photos that ship with the package (scikit-image's chelsea, coffee, "
                       "astronaut and rocket; BSD-3-Clause / public domain).")
    p.add_argument("--copy", metavar="DIR", help="copy the photos into DIR (created if missing; its parent must exist)")
    p.set_defaults(func=run_samples)


def run_models(args: argparse.Namespace) -> int:
    from ..resources import shipped_models

    rows: list[dict[str, Any]] = []
    for m in shipped_models():
        path = m.path
        rows.append({"name": m.name, "task": m.task, "size_bytes": path.stat().st_size, "sha256": m.sha256(),
                     "path": str(path), "description": m.description})
    if args.format == "json":
        write_output(json.dumps(rows, indent=2), args.out)
        return ExitCode.OK
    width = max(len(r["name"]) for r in rows)
    write_output("\n".join(f"{r['name']:<{width}}  {r['task']:<20}  {r['size_bytes'] / 2**20:5.1f} MiB  {r['sha256']}  "
                           f"{r['path']}" for r in rows), args.out)
    return ExitCode.OK


def run_samples(args: argparse.Namespace) -> int:
    import shutil
    from pathlib import Path

    from ..resources import sample_images
    from .common import CliError

    photos = sample_images()
    if not args.copy:
        for name, path in photos.items():
            print(f"{name}\t{path}")
        return ExitCode.OK
    out = Path(args.copy)
    if not out.parent.is_dir():
        raise CliError(f"--copy {out}: the folder {out.parent} does not exist (create it first)", ExitCode.USAGE)
    out.mkdir(exist_ok=True)
    for path in photos.values():
        shutil.copyfile(path, out / path.name)
        print(out / path.name)
    return ExitCode.OK
