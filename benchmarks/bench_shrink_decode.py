"""Decode speed of shrink-on-load, and images/s of a decode + embed pipeline, full vs shrunk decode.

Builds (once, in a cache folder) ``--count`` photo-like JPEGs of 12 MP
(4000x3000) and of 2 MP (1632x1224): scikit-image photos cropped (60-100 %),
mirrored, upscaled (bicubic) and saved at quality 92; every 8th is a portrait
stored sideways with an EXIF orientation (6, 8 or 3). ``--noisy-count`` more
12 MP files get Gaussian noise (sigma 3) after the upscale: upscaled 512-pixel
photos compress to ~1 MB, a real 12 MP photo to 3-5 MB, and libjpeg's entropy
decoding (which a DCT-scaled decode still does in full) grows with the file.

Then, in one run:

1. decode time per image, sequential on one thread: Pillow's bare
   ``open + load`` (libjpeg only), ``Image.create_from_file`` (what
   ``embed-dir`` does today: load + EXIF transpose + array conversion) and
   :func:`edge_embedder.vision.decode_for_model` at safety factors 1, 2 and 4
   (the scale each picks for a 224 x 224 model); medians and ratios;
2. images/s of the pipeline ``embed-dir`` uses (decoding on a bounded
   background thread pool, in order, while the model runs) with the full
   decode and with the shrunk one, for the shipped fp32 and int8 models,
   1 or 2 interpreter threads and 1 or 2 decode workers; each configuration
   runs full and shrunk back to back (ratios within the pair), ``--repeats``
   times, median rate reported.

    python benchmarks/bench_shrink_decode.py [--count 200] [--noisy-count 100] [--repeats 3]
        [--safety 1 2] [-o benchmarks/results/shrink_decode.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from edge_embedder import (
    BaseOptions,
    Image,
    ImageEmbedder,
    ImageEmbedderOptions,
    ImageProcessingOptions,
    RectF,
)
from edge_embedder.resources import default_model_path, sample_images
from edge_embedder.vision import decode_for_model

SETS = {"12MP": (4000, 3000, 0.0), "2MP": (1632, 1224, 0.0), "12MP-noisy": (4000, 3000, 3.0)}
TARGET = (224, 224)


# -- the photo folders ---------------------------------------------------------------------
def _sources() -> list[np.ndarray]:
    import skimage.data as skd

    out = [np.asarray(PILImage.open(p).convert("RGB")) for p in sorted((p for p in sample_images().values()))]
    for fn in (skd.hubble_deep_field, skd.immunohistochemistry, skd.retina, lambda: skd.stereo_motorcycle()[0]):
        out.append(np.asarray(fn()))
    for fn in (skd.camera, skd.coins, skd.moon, skd.grass, skd.gravel, skd.brick):
        out.append(np.repeat(np.asarray(fn())[..., None], 3, axis=2))
    return out


def build_set(folder: Path, count: int, size: tuple[int, int], sigma: float, seed: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"photo_{i:04d}.jpg" for i in range(count)]
    if all(p.exists() for p in paths):
        return paths
    sources = _sources()
    rng = np.random.default_rng(seed)
    w, h = size
    for i, path in enumerate(paths):
        if path.exists():
            continue
        src = sources[i % len(sources)]
        portrait = i % 8 == 7
        tw, th = (h, w) if portrait else (w, h)  # the displayed size
        sh, sw = src.shape[:2]
        # A random crop of (at least 60 % of) the source with the displayed aspect ratio.
        scale = rng.uniform(0.6, 1.0)
        cw = int(min(sw, sh * tw / th) * scale)
        ch = int(cw * th / tw)
        y, x = rng.integers(0, sh - ch + 1), rng.integers(0, sw - cw + 1)
        crop = src[y : y + ch, x : x + cw]
        if i % 2:
            crop = crop[:, ::-1]
        im = PILImage.fromarray(np.ascontiguousarray(crop)).resize((tw, th), PILImage.Resampling.BICUBIC)
        if sigma:
            a = np.asarray(im, np.float32) + rng.normal(0, sigma, (th, tw, 3)).astype(np.float32)
            im = PILImage.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))
        kw = {}
        if portrait:
            orientation = (6, 8, 3)[(i // 8) % 3]
            inverse = {6: PILImage.Transpose.ROTATE_90, 8: PILImage.Transpose.ROTATE_270,
                       3: PILImage.Transpose.ROTATE_180}[orientation]
            im = im.transpose(inverse)  # stored sideways; the EXIF tag turns it upright
            exif = PILImage.Exif()
            exif[0x0112] = orientation
            kw["exif"] = exif.tobytes()
        tmp = path.with_suffix(".tmp")
        im.save(tmp, "JPEG", quality=92, **kw)
        tmp.rename(path)
    return paths


# -- decoders ------------------------------------------------------------------------------
def bare_load(path: Path) -> None:
    with PILImage.open(path) as im:
        im.load()


def full_decode(path: Path):
    return Image.create_from_file(path).numpy_view(), None


def shrink_decoder(safety: float):
    def decode(path: Path):
        px, info = decode_for_model(path, TARGET, safety=safety)
        return px, info.roi

    return decode


def decode_times(paths: list[Path], fn) -> tuple[list[float], list[float]]:
    """(wall ms, this thread's CPU ms) per file; CPU time is robust to other processes competing."""
    wall, cpu = [], []
    for p in paths:
        t0, c0 = time.perf_counter(), time.thread_time()
        fn(p)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
    return wall, cpu


# -- the pipeline ---------------------------------------------------------------------------
def pipeline_rate(embedder: ImageEmbedder, paths: list[Path], decode, workers: int) -> float:
    """Images/s of decode-ahead on ``workers`` threads (bounded window, in order) + embed on this thread.

    The same structure as ``ImageEmbedder.iter_embed``'s decode-ahead (window 2 x workers).
    """
    window: deque = deque()
    done = 0
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bench-decode") as pool:
        it = iter(paths)
        for p in it:
            window.append(pool.submit(decode, p))
            if len(window) > 2 * workers:
                break
        while window:
            px, roi = window.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                window.append(pool.submit(decode, nxt))
            ipo = ImageProcessingOptions(region_of_interest=RectF(*roi)) if roi is not None else None
            embedder.embed(px, ipo)
            done += 1
    return done / (time.perf_counter() - t0)


def iter_embed_rate(embedder: ImageEmbedder, paths: list[Path], workers: int) -> float:
    t0 = time.perf_counter()
    n = sum(1 for item in embedder.iter_embed(paths, decode_workers=workers) if item.error is None)
    return n / (time.perf_counter() - t0)


def model_rate(embedder: ImageEmbedder, n: int = 100) -> float:
    px = np.zeros((375, 500, 3), np.uint8) + 100  # a 1/8 decode of a 12 MP photo
    for _ in range(5):
        embedder.embed(px)
    t0 = time.perf_counter()
    for _ in range(n):
        embedder.embed(px)
    return n / (time.perf_counter() - t0)


# -- report ---------------------------------------------------------------------------------
def cpu_info() -> tuple[str, str]:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or platform.machine(), ""
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    model = fields.get("Model name", "").strip()
    flags = fields.get("Flags", "").split()
    wanted = [f for f in flags if f.startswith(("avx", "amx", "fma", "f16c", "sse4", "sha_ni", "vnni"))]
    return f"{model}, {fields.get('CPU(s)', '?').strip()} CPUs", " ".join(wanted)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--noisy-count", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--safety", type=float, nargs="+", default=[1.0, 2.0])
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "edge_embedder_shrink_photos"))
    ap.add_argument("-o", "--output", default=None)
    args = ap.parse_args(argv)

    cache = Path(args.cache)
    sets = {}
    for i, (name, (w, h, sigma)) in enumerate(SETS.items()):
        n = args.noisy_count if sigma else args.count
        if n > 0:
            t0 = time.monotonic()
            sets[name] = build_set(cache / name, n, (w, h), sigma, seed=i)
            print(f"{name}: {n} files in {cache / name} ({time.monotonic() - t0:.0f} s to build or find)",
                  file=sys.stderr)
    cpu, flags = cpu_info()
    lines: list[str] = []
    w = lines.append
    w("# Shrink-on-load: decode speed and decode + embed throughput\n")
    cmd = "python benchmarks/bench_shrink_decode.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:]) if not a.endswith(".md") and a != "-o")
    w(f"`{cmd}`, {time.strftime('%Y-%m-%d %H:%M')}, {cpu}, Python {platform.python_version()}, "
      f"Pillow {PILImage.__version__} (libjpeg-turbo {_jpeg_version()}).\n")
    w(f"CPU flags (lscpu, SIMD subset): `{flags}`\n")
    load_start = os.getloadavg()
    for name, paths in sets.items():
        mb = statistics.median(p.stat().st_size for p in paths) / 1e6
        w(f"* `{name}`: {len(paths)} JPEGs q92, {SETS[name][0]}x{SETS[name][1]}, median file {mb:.2f} MB"
          f"{', sensor-like noise sigma %g' % SETS[name][2] if SETS[name][2] else ''}; every 8th a portrait "
          "stored sideways with EXIF orientation 6/8/3")
    w("")

    _decode_section(w, sets, args.safety)
    best = _pipeline_section(w, sets, args.safety, args.repeats)
    w("")
    w(f"Load average (1, 5, 15 min) at the start {', '.join(f'{v:.2f}' for v in load_start)}, at the end "
      f"{', '.join(f'{v:.2f}' for v in os.getloadavg())} (this machine has {os.cpu_count()} CPUs; above that, "
      "other processes were competing and absolute rates are low; the ratios are within back-to-back pairs).\n")
    w("## Best thread split per set, model and decode\n")
    w("| set | model and decode | best images/s | split |")
    w("|---|---|---|---|")
    for (name, what), (rate, label) in best.items():
        w(f"| {name} | {what} | {rate:.1f} | {label} |")
    text = "\n".join(lines) + "\n"
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
    print(text)
    return 0




def _decode_section(w, sets: dict, safety: list[float]) -> None:
    """Decode time per image in each mode, and the scale each safety factor picks."""
    w("## Decode time per image (one thread, sequential; median wall ms / median CPU ms of the thread)\n")
    modes = [("Pillow open+load (libjpeg only)", bare_load), ("Image.create_from_file (today)", full_decode)]
    modes += [(f"decode_for_model safety {f:g}", shrink_decoder(f)) for f in safety]
    w("| set | " + " | ".join(m for m, _ in modes) + " | scale picked | full / shrink (wall; CPU) |")
    w("|---|" + "---|" * (len(modes) + 2))
    for name, paths in sets.items():
        med, cpu_med = [], []
        for label, fn in modes:
            fn(paths[0])  # warm the file cache and the code
            wall, cpu = decode_times(paths, fn)
            med.append(statistics.median(wall))
            cpu_med.append(statistics.median(cpu))
            print(f"decode {name} {label}: {med[-1]:.1f} ms wall, {cpu_med[-1]:.1f} ms CPU", file=sys.stderr)
        picked = []
        for f in safety:
            scales = {decode_for_model(p, TARGET, safety=f)[1].scale for p in paths[:16]}
            picked.append(f"f={f:g}: " + "/".join(f"1/{s}" for s in sorted(scales, reverse=True)))
        ratios = ", ".join(f"{med[1] / m:.1f}x; {cpu_med[1] / c:.1f}x (f={f:g})"
                           for f, m, c in zip(safety, med[2:], cpu_med[2:]))
        w(f"| {name} | " + " | ".join(f"{m:.1f} / {c:.1f}" for m, c in zip(med, cpu_med))
          + f" | {'; '.join(picked)} | {ratios} |")
    w("")



def _pipeline_section(w, sets: dict, safety: list[float], repeats: int) -> dict[tuple[str, str], tuple[float, str]]:
    """Decode + embed images/s per set, model, interpreter threads and decode workers; the best split of each."""
    w("## Decode + embed pipeline, images/s (median of %d runs)\n" % repeats)
    w("Decode on `workers` background threads (bounded window, in order) while the model runs on the "
      "calling thread; `full` = `Image.create_from_file`, `shrink f` = `decode_for_model(safety=f)` and the "
      "mapped ROI. `model only` = `embed()` of an already decoded 500x375 array (the ceiling). "
      "`iter_embed` = today's `ImageEmbedder.iter_embed` on the paths (full decode, one run), as a check that "
      "the harness matches the shipped pipeline.\n")
    head = ["set", "model", "interp. threads", "decode workers", "model only", "iter_embed", "full"]
    head += [f"shrink f={f:g}" for f in safety] + [f"x full (f={f:g})" for f in safety]
    w("| " + " | ".join(head) + " |")
    w("|" + "---|" * len(head))
    best: dict[tuple[str, str], tuple[float, str]] = {}
    for name, paths in sets.items():
        for variant in ("fp32", "int8"):
            for threads in (1, 2):
                opts = ImageEmbedderOptions(base_options=BaseOptions(model_asset_path=default_model_path(variant),
                                                                     num_threads=threads))
                with ImageEmbedder.create_from_options(opts) as e:
                    ceiling = model_rate(e)
                    for workers in (1, 2):
                        runs = {"iter_embed": [], "full": [], **{f: [] for f in safety}}
                        for rep in range(repeats):
                            runs["full"].append(pipeline_rate(e, paths, full_decode, workers))
                            for f in safety:
                                runs[f].append(pipeline_rate(e, paths, shrink_decoder(f), workers))
                            if rep == 0:  # a check of the harness, once is enough
                                runs["iter_embed"].append(iter_embed_rate(e, paths, workers))
                        med = {k: statistics.median(v) for k, v in runs.items()}
                        cells = [name, variant, str(threads), str(workers), f"{ceiling:.1f}",
                                 f"{med['iter_embed']:.1f}", f"{med['full']:.1f}"]
                        cells += [f"{med[f]:.1f}" for f in safety]
                        cells += [f"{med[f] / med['full']:.2f}x" for f in safety]
                        w("| " + " | ".join(cells) + " |")
                        print(" | ".join(cells), file=sys.stderr)
                        for mode in ["full", *safety]:
                            key = (name, f"{variant} {mode if mode == 'full' else 'shrink f=%g' % mode}")
                            label = f"{threads} interp. + {workers} decode"
                            if med[mode] > best.get(key, (0.0, ""))[0]:
                                best[key] = (med[mode], label)
    return best


def _jpeg_version() -> str:
    try:
        from PIL import features

        return str(features.version("jpg"))
    except Exception:  # noqa: BLE001 - informational only
        return "?"


if __name__ == "__main__":
    sys.exit(main())
