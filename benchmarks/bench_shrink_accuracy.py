"""Accuracy of shrink-on-load: cosine of the shrunk-decode embedding to the full-decode one.

Every bundled photo and scikit-image's other photos are saved (once, in a cache
folder) as large JPEGs:

* ``2MP``       1635x1226 landscape (deliberately not a multiple of 8: partial DCT blocks);
* ``12MP``      4000x3000 landscape;
* ``12MP-exif6`` a 3024x4032 portrait stored as 4032x3024 with EXIF orientation 6
  (the phone-camera case: the decode must rotate it);
* ``12MP-noisy`` 4000x3000 with Gaussian noise (sigma 4 levels) added after the
  upscale, as a stand-in for the sensor noise and fine detail that upscaled
  512-pixel photos lack (quality 92 only);

at qualities 75 and 92, and embedded with three geometries: the whole image, a
ROI (0.10, 0.15, 0.75, 0.85) turned 90 degrees, and a small centre ROI
(0.35, 0.30, 0.65, 0.60). For each case the full decode (``Image.create_from_file``)
and the decode at every libjpeg scale (1/2, 1/4, 1/8) that leaves the ROI at
least the model's input size are embedded through ``edge_embedder.ImageEmbedder``
(the decoded arrays, same ImageProcessingOptions; the shrunk decode uses the ROI
that :func:`edge_embedder.vision.decode_for_model` maps onto it). A safety
factor ``f`` then picks, per case, the scale ``decode_for_model`` would pick,
and the table reports min / mean cosine per recipe and factor.

Recipes:

* the shipped EfficientNet-Lite0 fp32 and int8 (real ImageNet weights,
  MediaPipe's corner-aligned bilinear remap, no antialiasing);
* the same fp32 model with the MediaPipe ROI shifted onto pixel centres
  (``roi_for(..., centres=True)``; an experiment, not a RectF);
* the same fp32 network with a ViT recipe (Pillow bilinear stretch to 224) and
  with a CLIP recipe (Pillow bicubic shortest edge 224 + centre crop) written
  into its metadata: real weights through the ``pil`` sampler;
* the same two pil recipes with the shrunk decode resampled by
  the runtime's pil sampler with ``reduced=info`` (the full decode's integer
  crop and resize size, fractional source box on the reduced pixels) instead
  of the runtime's pil sampler; the reference is still the runtime on the full decode;
* ViT-B/16 and CLIP ViT-B/32 with *random* weights (``--vit`` / ``--clip``,
  converted with ``edge-embedder convert``); random transformers map different
  photos to nearby vectors, so their cosines are reported with the median
  cosine between *different* photos as a yardstick.

    python benchmarks/bench_shrink_accuracy.py [--vit /tmp/vit.tflite] [--clip /tmp/clip.tflite]
        [--quick] [--json raw.json] [-o benchmarks/results/shrink_accuracy.md]

The random-weight transformers (full size; torch.manual_seed(0)) were built with::

    python -c "
    import torch; torch.manual_seed(0)
    from transformers import (ViTConfig, ViTImageProcessor, ViTModel, CLIPVisionConfig,
                              CLIPVisionModelWithProjection, CLIPImageProcessor)
    ViTModel(ViTConfig()).save_pretrained('/tmp/vit'); ViTImageProcessor().save_pretrained('/tmp/vit')
    CLIPVisionModelWithProjection(CLIPVisionConfig(patch_size=32)).save_pretrained('/tmp/clip')
    CLIPImageProcessor().save_pretrained('/tmp/clip')"
    python -m edge_embedder.cli convert --arch vit --model /tmp/vit -o /tmp/vit.tflite
    python -m edge_embedder.cli convert --arch clip --model /tmp/clip -o /tmp/clip.tflite
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import sys
import tempfile
import time
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
from edge_embedder.vision import JPEG_SCALES, Preprocessor, choose_scale, decode_for_model

TARGET = (224, 224)  # every recipe here resamples the ROI to 224 (shortest edge for CLIP)
SAFETIES = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 8.0)
GEOMETRIES = {
    "whole": (None, 0),
    "roi+rot90": ((0.10, 0.15, 0.75, 0.85), 90),
    "small-roi": ((0.35, 0.30, 0.65, 0.60), 0),
}
VARIANTS = {  # name: (displayed width, height, EXIF orientation, noise sigma, qualities)
    "2MP": (1635, 1226, 1, 0.0, (75, 92)),
    "12MP": (4000, 3000, 1, 0.0, (75, 92)),
    "12MP-exif6": (3024, 4032, 6, 0.0, (75, 92)),
    "12MP-noisy": (4000, 3000, 1, 4.0, (92,)),
}
FLOOR = 0.99
BINS = ((1.0, 1.25), (1.25, 1.5), (1.5, 2.0), (2.0, 2.5), (2.5, 3.0), (3.0, 4.0), (4.0, 6.0), (6.0, float("inf")))


# -- photos and files ------------------------------------------------------------------
def photos(quick: bool) -> dict[str, np.ndarray]:
    import skimage.data as skd

    out: dict[str, np.ndarray] = {}
    for p in sorted((p for p in sample_images().values())):
        out[p.stem] = np.asarray(PILImage.open(p).convert("RGB"))
    if quick:
        return out
    extra = {
        "hubble_deep_field": skd.hubble_deep_field,
        "immunohistochemistry": skd.immunohistochemistry,
        "retina": skd.retina,
        "motorcycle": lambda: skd.stereo_motorcycle()[0],
        "camera": skd.camera,
        "coins": skd.coins,
        "moon": skd.moon,
        "grass": skd.grass,
        "gravel": skd.gravel,
        "brick": skd.brick,
        "clock": skd.clock,
    }
    for name, fn in extra.items():
        out[name] = np.asarray(fn())  # gray photos stay gray: a gray JPEG is a real case
    return out


def _crop_to_aspect(a: np.ndarray, w: int, h: int) -> np.ndarray:
    ih, iw = a.shape[:2]
    if iw * h > ih * w:  # too wide
        cw = ih * w // h
        x = (iw - cw) // 2
        return a[:, x : x + cw]
    ch = iw * h // w
    y = (ih - ch) // 2
    return a[y : y + ch]


def build_files(cache: Path, quick: bool) -> list[dict]:
    cache.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    files = []
    for name, arr in photos(quick).items():
        for vname, (w, h, orient, sigma, qualities) in VARIANTS.items():
            for q in qualities:
                path = cache / f"{name}_{vname}_q{q}.jpg"
                files.append({"photo": name, "variant": vname, "quality": q, "path": path})
                if path.exists():
                    continue
                im = PILImage.fromarray(np.ascontiguousarray(_crop_to_aspect(arr, w, h)))
                im = im.resize((w, h), PILImage.Resampling.BICUBIC)
                if sigma:
                    noisy = np.asarray(im, np.float32) + rng.normal(0, sigma, (h, w) + np.asarray(im).shape[2:])
                    im = PILImage.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))
                kw = {}
                if orient != 1:
                    # Store it so that the EXIF orientation turns it upright again.
                    assert orient == 6
                    im = im.transpose(PILImage.Transpose.ROTATE_90)
                    exif = PILImage.Exif()
                    exif[0x0112] = orient
                    kw["exif"] = exif.tobytes()
                tmp = path.with_suffix(".tmp")
                im.save(tmp, "JPEG", quality=q, **kw)
                tmp.rename(path)
    return files


# -- models ----------------------------------------------------------------------------
def pil_recipe_model(src: Path, dst: Path, recipe: dict) -> Path:
    """The shipped fp32 network with another resize recipe in its metadata (real weights)."""
    from edge_embedder.metadata import RECIPE_KEY, populate_tflite_metadata, read_tflite_metadata

    if dst.exists():
        return dst
    raw = src.read_bytes()
    md = read_tflite_metadata(raw)
    custom = [(k, v) for k, v in md.custom_metadata if k != RECIPE_KEY]
    custom.append((RECIPE_KEY, json.dumps(recipe, sort_keys=True).encode()))
    dst.write_bytes(populate_tflite_metadata(raw, dataclasses.replace(md, custom_metadata=custom)))
    return dst


def rect(t) -> RectF | None:
    if t is None:
        return None
    return RectF(*t)


def raw_rect(t) -> RectF:
    """A RectF without validation: the centre-aligned ROI may stick out of [0, 1] by a fraction of a pixel."""
    r = RectF.__new__(RectF)
    for k, v in zip(("left", "top", "right", "bottom"), t):
        object.__setattr__(r, k, float(v))
    return r


@dataclasses.dataclass
class Recipe:
    name: str
    model: Path
    random: bool = False
    centres: bool = False
    exact: bool = False  # shrunk decode through the sampler's exact fractional crop (reduced=info)
    embedder: ImageEmbedder | None = None


def ratio_of(size: tuple[int, int], roi, rotation: int, scale: int) -> float:
    lft, t, r, b = roi or (0.0, 0.0, 1.0, 1.0)
    th, tw = TARGET if rotation % 180 == 0 else TARGET[::-1]
    return min((r - lft) * size[0] / scale / tw, (b - t) * size[1] / scale / th)


def antialiased(full: np.ndarray, roi, rotation: int) -> np.ndarray:
    """The ROI box-filtered (area average, exact fractional edges) to 224 x 224, then turned.

    Fed to a MediaPipe-recipe model without ROI, its corner-aligned remap is the
    identity at 224 x 224, so this embeds an alias-free version of the same view.
    """
    h, w = full.shape[:2]
    lft, t, r, b = roi or (0.0, 0.0, 1.0, 1.0)
    im = PILImage.fromarray(full).resize((TARGET[1], TARGET[0]) if rotation % 180 == 0 else TARGET,
                                         PILImage.Resampling.BOX, box=(lft * w, t * h, r * w, b * h))
    return np.ascontiguousarray(np.rot90(np.asarray(im), -((rotation // 90) % 4)))


def cos(u, v) -> float:
    return float(ImageEmbedder.cosine_similarity(u, v))


# -- the run ---------------------------------------------------------------------------
def run(args) -> dict:
    cache = Path(args.cache)
    files = build_files(cache, args.quick)
    recipes = [
        Recipe("EfficientNet-Lite0 fp32 (mediapipe)", default_model_path("fp32")),
        Recipe("EfficientNet-Lite0 fp32 (mediapipe, centre-aligned ROI)", default_model_path("fp32"),
               centres=True),
        Recipe("EfficientNet-Lite0 int8 (mediapipe)", default_model_path("int8")),
        Recipe("EfficientNet-Lite0 fp32, ViT recipe (pil bilinear stretch)", pil_recipe_model(
            default_model_path("fp32"), cache / "effnet_vit_recipe.tflite",
            {"sampler": "pil", "resize": "stretch", "size": [224, 224], "interpolation": "bilinear"})),
        Recipe("EfficientNet-Lite0 fp32, CLIP recipe (pil bicubic shortest edge + crop)", pil_recipe_model(
            default_model_path("fp32"), cache / "effnet_clip_recipe.tflite",
            {"sampler": "pil", "resize": "shortest_edge", "size": 224, "crop": [224, 224],
             "interpolation": "bicubic"})),
    ]
    for base in list(recipes[3:5]):
        recipes.append(dataclasses.replace(base, name=base.name.replace(" (pil", ", exact crop (pil"), exact=True))
    for flag, label in ((args.vit, "ViT-B/16, random weights (pil bilinear stretch)"),
                        (args.clip, "CLIP ViT-B/32, random weights (pil bicubic shortest edge + crop)")):
        if flag and Path(flag).exists():
            recipes.append(Recipe(label, Path(flag), random=True))
        elif flag:
            print(f"skipping {label}: {flag} not found (see the module docstring to build it)", file=sys.stderr)
    for r in recipes:
        r.embedder = ImageEmbedder.create_from_options(
            ImageEmbedderOptions(base_options=BaseOptions(model_asset_path=r.model, num_threads=args.threads)))
        print(f"{r.name}: {r.embedder.model_spec.recipe}", file=sys.stderr)

    cases = []  # one per (file, geometry): ratios per scale and cosines per recipe per scale
    refs: dict[tuple, dict[str, np.ndarray]] = {}
    t_start = time.monotonic()
    for i, f in enumerate(files):
        full = Image.create_from_file(f["path"]).numpy_view()
        size = (full.shape[1], full.shape[0])
        reduced = {}
        for s in JPEG_SCALES[:-1]:
            # Only scales some safety factor >= 1 could pick for some geometry.
            if max(ratio_of(size, roi, rot, s) for roi, rot in GEOMETRIES.values()) >= 1.0:
                reduced[s] = decode_for_model(f["path"], TARGET, scale=s)
        for gname, (roi, rot) in GEOMETRIES.items():
            case = {**{k: v for k, v in f.items() if k != "path"}, "file": f["path"].name, "geometry": gname,
                    "size": size, "roi": roi, "rotation": rot,
                    "ratio": {s: ratio_of(size, roi, rot, s) for s in JPEG_SCALES}, "cos": {}}
            ipo_full = ImageProcessingOptions(region_of_interest=rect(roi), rotation_degrees=rot)
            aa = antialiased(full, roi, rot)
            case["aa"] = {}
            for r in recipes:
                e = r.embedder
                ref = e.embed(full, ipo_full).embeddings[0]
                aa_ref = None
                if e.model_spec.recipe.sampler == "mediapipe":
                    aa_ref = e.embed(aa).embeddings[0]
                    case["aa"][r.name] = {1: cos(aa_ref, ref)}
                refs.setdefault((f["variant"], f["quality"], gname), {})[(r.name, f["photo"])] = ref.embedding
                row = {1: 1.0}
                for s, (px, info) in reduced.items():
                    if case["ratio"][s] < 1.0:
                        continue
                    if r.exact:
                        spec = e.model_spec
                        pre = Preprocessor(spec.height, spec.width, spec.recipe, None)
                        x = pre.to_uint8(px, ipo_full, reduced=info)  # the runtime's exact fractional crop
                        v = e.embed(x).embeddings[0]
                        row[s] = cos(ref, v)
                        continue
                    if r.centres:
                        ipo = ImageProcessingOptions(region_of_interest=raw_rect(info.roi_for(roi, centres=True)),
                                                     rotation_degrees=rot)
                    else:
                        ipo = ImageProcessingOptions(region_of_interest=rect(info.roi_for(roi)), rotation_degrees=rot)
                    v = e.embed(px, ipo).embeddings[0]
                    row[s] = cos(ref, v)
                    if aa_ref is not None:
                        case["aa"][r.name][s] = cos(aa_ref, v)
                case["cos"][r.name] = row
            cases.append(case)
        el = time.monotonic() - t_start
        print(f"[{i + 1}/{len(files)}] {f['path'].name} {el:.0f} s "
              + " ".join(f"1/{s}:{min(c['cos'][recipes[0].name].get(s, 1) for c in cases[-3:]):.4f}"
                         for s in reduced), file=sys.stderr)
    # Yardstick: cosine between full-decode embeddings of *different* photos (same variant / geometry).
    yard = {}
    for r in recipes:
        vals = []
        for group in refs.values():
            vecs = [v for (rn, _), v in group.items() if rn == r.name]
            for a in range(len(vecs)):
                for b in range(a + 1, len(vecs)):
                    vals.append(cos(vecs[a], vecs[b]))
        yard[r.name] = statistics.median(vals) if vals else float("nan")
    # Second yardstick: the same photo decoded in full at 12 MP and at 2 MP (whole image, q92).
    resyard = {}
    for r in recipes:
        a, b = refs.get(("12MP", 92, "whole"), {}), refs.get(("2MP", 92, "whole"), {})
        vals = [cos(a[k], b[k]) for k in a if k[0] == r.name and k in b]
        resyard[r.name] = (min(vals), statistics.fmean(vals)) if vals else (float("nan"), float("nan"))
    for r in recipes:
        r.embedder.close()
    return {"cases": cases, "recipes": [(r.name, r.random) for r in recipes], "yardstick": yard,
            "resolution_yardstick": resyard,
            "files": len(files), "photos": sorted({f["photo"] for f in files}), "seconds": time.monotonic() - t_start}


def chosen(case: dict, safety: float) -> int:
    return choose_scale(case["size"], TARGET, case["roi"], case["rotation"], safety=safety)[0]


def report(res: dict, args) -> str:
    """The results file: what was measured, then one section per question."""
    lines: list[str] = []
    w = lines.append
    _intro(w, res, args)
    _yardsticks(w, res)
    picks = _safety_factors(w, res)
    _ratio_bands(w, res)
    _chosen_factors(w, res, picks)
    _mediapipe_alias_free(w, res)
    _per_file_kind(w, res, picks)
    _per_photo(w, res, picks)
    return "\n".join(lines) + "\n"


def _intro(w, res: dict, args) -> None:
    cases = res["cases"]
    w("# Shrink-on-load accuracy: cosine to the full-decode embedding\n")
    w(f"`python benchmarks/bench_shrink_accuracy.py{' --quick' if args.quick else ''}` on {platform.machine()}, "
      f"{time.strftime('%Y-%m-%d')}, {res['files']} JPEG files x {len(GEOMETRIES)} geometries = {len(cases)} cases "
      f"per recipe ({res['seconds'] / 60:.0f} min).\n")
    w(f"Photos ({len(res['photos'])}): {', '.join(res['photos'])} (the bundled photos and scikit-image's "
      "others; gray ones saved as gray JPEGs). Files: " + "; ".join(
          f"`{k}` {v[0]}x{v[1]}{' EXIF %d' % v[2] if v[2] != 1 else ''}{' noise sigma %g' % v[3] if v[3] else ''}"
          f" q{'/'.join(map(str, v[4]))}" for k, v in VARIANTS.items()) + ". Geometries: " + "; ".join(
          f"`{k}` ROI {v[0]} rotation {v[1]}" for k, v in GEOMETRIES.items()) + ".\n")
    w("A case's *ratio* at a scale is the ROI's decoded extent over the model input along the tighter axis "
      "(rotation swaps the axes); safety factor f decodes at the coarsest scale with ratio >= f, as "
      "`decode_for_model(..., safety=f)` does (1/1 = full decode, cosine 1). Source photos are 300-1411 "
      "pixels upscaled to 2-12 MP, so they are smoother than camera photos; the `12MP-noisy` files add "
      "sensor-like noise to make up for part of that.\n")
    w(f"Floor: min cosine >= {FLOOR}. Random-weight models: the median cosine between *different* photos "
      "is given as a yardstick; they map all photos close together, so their cosines say little "
      "(the real-weight EfficientNet rows with the same pil recipes are the evidence for those recipes).\n")


def _yardsticks(w, res: dict) -> None:
    yard = res["yardstick"]
    w("## Yardsticks (full decodes only)\n")
    w("| recipe | different photos: median cos | same photo, 12 MP vs 2 MP full decode: min / mean cos |")
    w("|---|---|---|")
    for name, _ in res["recipes"]:
        mn, mean = res.get("resolution_yardstick", {}).get(name, (float("nan"), float("nan")))
        w(f"| {name} | {yard[name]:.3f} | {mn:.4f} / {mean:.4f} |")
    w("")


def _safety_factors(w, res: dict) -> dict:
    """Min / mean cosine per recipe and safety factor; the smallest factor meeting the floor, per recipe."""
    cases = res["cases"]
    w("## Min / mean cosine per recipe and safety factor\n")
    w("| recipe | safety | min cos | mean cos | decoded reduced | 1/8 | 1/4 | 1/2 | worst case |")
    w("|---|---|---|---|---|---|---|---|---|")
    picks = {}
    for name, _rnd in res["recipes"]:
        pick = None
        for f in SAFETIES:
            vals, scales, worst = [], [], None
            for c in cases:
                s = chosen(c, f)
                v = c["cos"][name].get(s)
                if v is None:  # cannot happen: every scale with ratio >= 1 was measured
                    raise RuntimeError(f"missing scale 1/{s} for {c['file']} {c['geometry']}")
                vals.append(v)
                scales.append(s)
                if worst is None or v < worst[0]:
                    worst = (v, f"{c['file']} {c['geometry']} 1/{s}")
            mn, mean = min(vals), statistics.fmean(vals)
            if pick is None and mn >= FLOOR:
                pick = f
            share = lambda k, scales=scales: f"{100 * sum(1 for s in scales if s == k) / len(scales):.0f}%"  # noqa: E731
            w(f"| {name} | {f:g} | {mn:.4f} | {mean:.4f} | "
              f"{100 * sum(1 for s in scales if s > 1) / len(scales):.0f}% | {share(8)} | {share(4)} | {share(2)} | "
              f"{worst[1]} ({worst[0]:.4f}) |")
        picks[name] = pick
    return picks


def _ratio_bands(w, res: dict) -> None:
    cases = res["cases"]
    w("\n## Cosine by ratio (decoded ROI extent / model input), every measured reduced decode\n")
    w("| recipe | " + " | ".join(f"{lo:g}-{hi:g}" if hi != float('inf') else f">= {lo:g}" for lo, hi in BINS) + " |")
    w("|---|" + "---|" * len(BINS))
    for name, _ in res["recipes"]:
        cells = []
        for lo, hi in BINS:
            vals = [v for c in cases for s, v in c["cos"][name].items() if s > 1 and lo <= c["ratio"][s] < hi]
            cells.append(f"{min(vals):.4f} / {statistics.fmean(vals):.4f} (n={len(vals)})" if vals else "-")
        w(f"| {name} | " + " | ".join(cells) + " |")
    w("\nCells: min / mean cosine (number of reduced decodes in that ratio band).\n")


def _chosen_factors(w, res: dict, picks: dict) -> None:
    cases = res["cases"]
    w("## Chosen safety factor per recipe (smallest with min cosine >= %g)\n" % FLOOR)
    w("| recipe | safety | min cos | mean cos | note |")
    w("|---|---|---|---|---|")
    for name, rnd in res["recipes"]:
        f = picks[name]
        if f is None:
            w(f"| {name} | full decode | - | - | no factor up to {SAFETIES[-1]:g} meets the floor |")
            continue
        vals = [c["cos"][name][chosen(c, f)] for c in cases]
        note = "random weights: yardstick only" if rnd else ""
        if not any(chosen(c, f) > 1 for c in cases):
            w(f"| {name} | full decode | 1.0000 | 1.0000 | only f={f:g}, which shrinks none of these files, meets "
              "the floor |")
            continue
        w(f"| {name} | {f:g} | {min(vals):.4f} | {statistics.fmean(vals):.4f} | {note} |")


def _mediapipe_alias_free(w, res: dict) -> None:
    cases = res["cases"]
    w("\n## MediaPipe recipe: distance to an alias-free view\n")
    w("The MediaPipe recipe point-samples the full decode without antialiasing, so its reference is itself "
      "an aliased estimate of the ROI. Here both the full decode and the shrunk decode are compared with the "
      "embedding of the same ROI box-filtered to 224 x 224 (area average, then fed with no ROI: the remap is the "
      "identity). *closer* = share of cases where the shrunk decode is closer to the alias-free view than the "
      "full decode is.\n")
    w("| recipe | safety | full decode vs alias-free: min / mean | shrunk vs alias-free: min / mean | closer |")
    w("|---|---|---|---|---|")
    for name, _ in res["recipes"]:
        if not all(name in c.get("aa", {}) for c in cases):
            continue
        for f in (1.0, 1.5, 2.0, 3.0, 4.0):
            full_v = [c["aa"][name][1] for c in cases]
            shr_v = [c["aa"][name][chosen(c, f)] for c in cases]
            closer = sum(1 for a, b in zip(full_v, shr_v) if b > a) / len(cases)
            w(f"| {name} | {f:g} | {min(full_v):.4f} / {statistics.fmean(full_v):.4f} | "
              f"{min(shr_v):.4f} / {statistics.fmean(shr_v):.4f} | {100 * closer:.0f}% |")


def _per_file_kind(w, res: dict, picks: dict) -> None:
    cases = res["cases"]
    w("\n## Per file kind at the chosen factor (min / mean over photos and geometries)\n")
    kinds = sorted({(c["variant"], c["quality"]) for c in cases}, key=lambda k: (list(VARIANTS).index(k[0]), k[1]))
    w("| recipe | safety | " + " | ".join(f"{v} q{q}" for v, q in kinds) + " |")
    w("|---|---|" + "---|" * len(kinds))
    for name, _ in res["recipes"]:
        f = picks[name]
        if f is None or not any(chosen(c, f) > 1 for c in cases):
            continue
        cells = []
        for k in kinds:
            sub = [c for c in cases if (c["variant"], c["quality"]) == k]
            vals = [c["cos"][name][chosen(c, f)] for c in sub]
            red = sum(1 for c in sub if chosen(c, f) > 1)
            cells.append(f"{min(vals):.4f} / {statistics.fmean(vals):.4f} ({red}/{len(sub)} reduced)")
        w(f"| {name} | {f:g} | " + " | ".join(cells) + " |")


def _per_photo(w, res: dict, picks: dict) -> None:
    cases = res["cases"]
    w("\n## Per photo at the chosen factor (min over sizes, qualities and geometries)\n")
    names = res["photos"]
    w("| recipe | " + " | ".join(names) + " |")
    w("|---|" + "---|" * len(names))
    for name, _ in res["recipes"]:
        f = picks[name]
        if f is None or not any(chosen(c, f) > 1 for c in cases):
            continue
        cells = [f"{min(c['cos'][name][chosen(c, f)] for c in cases if c['photo'] == p):.4f}" for p in names]
        w(f"| {name} | " + " | ".join(cells) + " |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "edge_embedder_shrink_accuracy"))
    ap.add_argument("--vit", default="/tmp/vit.tflite", help="random-weight ViT-B/16 .tflite ('' to skip)")
    ap.add_argument("--clip", default="/tmp/clip.tflite", help="random-weight CLIP ViT-B/32 .tflite ('' to skip)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="bundled photos only")
    ap.add_argument("--json", default=None, help="also save the raw per-case cosines here")
    ap.add_argument("--from-json", default=None, help="only re-render the table from a --json file")
    ap.add_argument("-o", "--output", default=None, help="write the markdown table here (default: stdout)")
    args = ap.parse_args(argv)
    if args.from_json:
        res = json.loads(Path(args.from_json).read_text())
        for c in res["cases"]:
            c["ratio"] = {int(k): v for k, v in c["ratio"].items()}
            c["cos"] = {n: {int(k): v for k, v in row.items()} for n, row in c["cos"].items()}
            c["aa"] = {n: {int(k): v for k, v in row.items()} for n, row in c.get("aa", {}).items()}
            c["size"] = tuple(c["size"])
            c["roi"] = tuple(c["roi"]) if c["roi"] else None
    else:
        res = run(args)
        if args.json:
            Path(args.json).write_text(json.dumps(res, default=str))
    text = report(res, args)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
