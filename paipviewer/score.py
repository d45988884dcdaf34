"""``paipviewer score``: score images with one or two models and write what users keep.

    paipviewer score PATHS... --model M [--compare M2] --out DIR [--threshold T] [--views N] [--overwrite]

For each image and model: ``DIR/scores.csv`` (a row each), ``DIR/masks/<model>/<stem>.png`` (uint16
labels of the predicted nuclei), ``DIR/overlays/<model>/<stem>.png`` (the overlay with the default
layers, at the image's resolution) and ``DIR/geojson/<model>/<stem>.geojson`` (QuPath detections).
Every file is written atomically; nothing is replaced without ``--overwrite``. An image that cannot
be read is reported and the others are still scored (exit 1); an unusable model or output folder
stops before any work (exit 2). Qt-free and TensorFlow-free: it runs models through ONNX Runtime.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from paipviewer.core import geojson
from paipviewer.core.atomic import write_text_atomic
from paipviewer.core.evidence import COLUMNS, Assessment, assess, row, rows_to_csv, truth_labels
from paipviewer.core.imageio import ImageReadError, read_image, write_png_atomic
from paipviewer.core.inference import DEFAULT_OVERLAP, VIEWS
from paipviewer.core.magnification import image_pixel_size, plan_scale, plausible, predict_at_scale
from paipviewer.core.modelfile import MODEL_SUFFIXES, LoadedModel, ModelFileError, load_model
from paipviewer.core.objects import ObjectSettings
from paipviewer.core.outputs import check_new_files, check_writable_folder
from paipviewer.core.slides import Slide, SlideError, is_slide
from paipviewer.core.stats import wilcoxon

SCORES = "scores.csv"
OUTPUTS = {"masks": ".png", "overlays": ".png", "geojson": ".geojson"}
SUMMARY = ("dice", "jaccard", "aji", "pq", "det_f1")


class ScoreError(Exception):
    """Nothing can be scored (a model, the output folder, no images): the message says why."""


@dataclass
class ScoreModel:
    name: str          # the model id: the file stem, and the folder name of its outputs
    loaded: LoadedModel
    threshold: float
    objects: ObjectSettings


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="paipviewer score", description="Score images with a model (and a second to compare): per-image "
        "pixel and nucleus scores in scores.csv, predicted nuclei as label PNGs and QuPath GeoJSON, and overlays.")
    p.add_argument("paths", nargs="+", help="images or folders (images/ + masks/, train/ + test/, PAIP 2023)")
    p.add_argument("--model", required=True, help="model id (a file stem such as elunet_8_5) or model file")
    p.add_argument("--compare", help="a second model, scored on the same images and tested against the first")
    p.add_argument("--out", required=True, help="folder for scores.csv, masks/, overlays/ and geojson/")
    p.add_argument("--threshold", type=float, help="probability threshold for both models (default: each card's)")
    p.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    p.add_argument("--models-dir", help="folder of your own models, searched for model ids")
    p.add_argument("--mpp", type=float, help="microns per pixel of images whose files do not say (default: "
                   "unknown, taken as the model's)")
    p.add_argument("--no-rescale", action="store_true", help="run every image as it is, even at another "
                   "magnification than the model's (to measure what the resampling gains)")
    p.add_argument("--views", type=int, choices=VIEWS, default=1,
                   help="test-time augmentation: predict each tile in this many dihedral views (quarter turns, "
                        "mirrored or not) and average them; about that many times slower (default 1: none)")
    p.add_argument("--truth", help="ground truth of a single image or slide that lies under another name than the "
                   "layouts expect: QuPath GeoJSON, or an instance map or mask (PNG, TIFF)")
    return p.parse_args(argv)


def resolve_model(spec: str, models_dir: str | None = None) -> Path:
    """A model file, or the model of that id among the user's and the shipped models."""
    from paipviewer.viewer.catalog import model_key
    from paipviewer.viewer.paths import shipped_models_dir, user_models_dir

    path = Path(spec)
    if path.suffix in (*MODEL_SUFFIXES, ".json") or path.exists():
        if not path.exists():
            raise ScoreError(f"model {spec}: no such file")
        return model_key(path)
    folders = [Path(models_dir)] if models_dir else []
    folders += [user_models_dir(), shipped_models_dir()]
    for folder in folders:
        for suffix in MODEL_SUFFIXES:
            if (folder / f"{spec}{suffix}").is_file():
                return model_key(folder / f"{spec}{suffix}")
    known = sorted({p.stem for f in folders if f.is_dir() for s in MODEL_SUFFIXES for p in f.glob(f"*{s}")})
    raise ScoreError(f"model {spec!r} not found; known ids: {', '.join(known) or 'none'}")


def open_model(spec: str, models_dir: str | None, threshold: float | None) -> ScoreModel:
    path = resolve_model(spec, models_dir)
    try:
        loaded = load_model(path)
    except ModelFileError as exc:
        raise ScoreError(f"model {spec}: {exc}") from None
    card = loaded.card
    return ScoreModel(path.stem, loaded, card.threshold if threshold is None else threshold,
                      ObjectSettings.from_dict(card.objects))


def gather(paths: list[str]) -> tuple[list[tuple[Path, Path | None]], list[str]]:
    """(image or slide, mask) pairs of the given paths, and a message for each path that gives none."""
    from paipviewer.core.datasets import find_mask
    from paipviewer.viewer.images import expand_paths

    slides = [Path(p) for p in paths if is_slide(p)]
    for folder in (Path(p) for p in paths if Path(p).is_dir()):
        slides += sorted(f for f in folder.iterdir() if is_slide(f))
    pairs, models, failures = expand_paths([p for p in paths if not is_slide(p)])
    if not pairs and slides:  # a folder of slides holds no flat images; that is no failure
        failures = [f for f in failures if not (f.path.is_dir() and "no images found" in f.reason)]
    pairs = [(s, find_mask(s)) for s in slides] + pairs
    problems = [f"{f.path}: {f.reason}" for f in failures]
    problems += [f"{m}: a model file; give models with --model or --compare" for m in models]
    seen, unique = set(), []
    for image, mask in pairs:
        if image.resolve() not in seen:
            seen.add(image.resolve())
            unique.append((image, mask))
    return unique, problems


def output_paths(out: Path, model: str, image: Path) -> dict[str, Path]:
    """Where one image's files go; a slide's labels are a pyramidal TIFF, too large for a PNG."""
    slide = is_slide(image)
    return {kind: out / kind / model / f"{image.stem}{'.tif' if slide and kind == 'masks' else suffix}"
            for kind, suffix in OUTPUTS.items()}


def write_outputs(out: Path, model: str, image_path: Path, image: np.ndarray, probability: np.ndarray,
                  assessment: Assessment, truth: np.ndarray | None) -> dict[str, Path]:
    """One image's files for one model: nucleus labels, the overlay with the default layers, GeoJSON.
    The viewer's export writes through here too, so its files are the command line's."""
    from paipviewer.viewer.layers import LayerState, overlay_image

    if assessment.nuclei_pred > np.iinfo(np.uint16).max:
        raise ImageReadError(f"{image_path.name}: {assessment.nuclei_pred:,} nuclei do not fit a 16-bit label PNG")
    layers = LayerState.default("annotated" if truth is not None else "plain")
    files = output_paths(out, model, image_path)
    write_png_atomic(files["masks"], assessment.nuclei.astype(np.uint16))
    write_png_atomic(files["overlays"], overlay_image(image, layers, probability >= assessment.threshold,
                                                      None if truth is None else truth > 0))
    geojson.write(files["geojson"], geojson.features(assessment.nuclei, probability))
    return files


def score_image(image_path: Path, mask_path: Path | None, models: list[ScoreModel], out: Path,
                log=print, mpp: float | None = None, rescale: bool = True, views: int = 1) -> list[dict]:
    """Rows of one image for each model, its files written. Raises ImageReadError for the image."""
    image = read_image(image_path)
    pixel_size = image_pixel_size(image_path, mpp)
    truth = None
    if mask_path is not None:
        try:
            truth = truth_labels(mask_path, image.shape[:2])
        except ImageReadError as exc:
            log(f"{image_path.name}: ground truth not used: {exc}")
    rows = []
    for m in models:
        scale = plan_scale(pixel_size, m.loaded.card.mpp, rescale)
        t0 = time.perf_counter()
        prediction = predict_at_scale(m.loaded.model, image, m.loaded.card.equalize, scale, overlap=DEFAULT_OVERLAP,
                                      views=views)
        seconds = time.perf_counter() - t0
        a = assess(prediction.probability, m.threshold, truth, m.objects)
        write_outputs(out, m.name, image_path, image, prediction.probability, a, truth)
        rows.append(row(image_path.name, m.name, a, seconds, pixel_size.mpp, scale.factor, views))
        if scale.resampled or (pixel_size.mpp and not rescale):
            log(f"{image_path.name}, {m.name}: {scale.text()}")
    return rows


def score_slide_file(path: Path, truth_path: Path | None, models: list[ScoreModel], out: Path, log=print,
                     mpp: float | None = None, rescale: bool = True, views: int = 1) -> list[dict]:
    """Rows of one whole slide for each model, its files written (see :mod:`paipviewer.core.slide_run`)."""
    import resource

    from paipviewer.core.slide_run import label_slide, nucleus_features, predict_slide, score_slide, write_label_pyramid

    try:
        slide = Slide(path)
    except SlideError as exc:
        raise ImageReadError(str(exc)) from None
    with slide:
        size = slide.pixel_size if slide.pixel_size.mpp else image_pixel_size(path, mpp)
        width, height = slide.dimensions
        truth = None
        if truth_path is not None:
            try:
                truth = truth_labels(truth_path, (height, width), out / ".work" / "truth")
            except ImageReadError as exc:
                log(f"{path.name}: ground truth not used: {exc}")
        rows = []
        for m in models:
            scale = plan_scale(size, m.loaded.card.mpp, rescale)
            log(f"{path.name}, {m.name}: {width} x {height} px, {scale.text()}")
            work = out / ".work" / m.name / path.stem
            last = [0.0]

            def progress(done, total, name=m.name):
                if time.perf_counter() - last[0] > 10 or done == total:
                    last[0] = time.perf_counter()
                    log(f"{path.name}, {name}: block {done}/{total}")

            t0 = time.perf_counter()
            run = predict_slide(m.loaded.model, m.loaded.card.equalize, slide, scale, work, m.name, progress=progress,
                                views=views)
            labels, boxes = label_slide(run.probability, m.threshold, m.objects, work)
            seconds = time.perf_counter() - t0
            files = output_paths(out, m.name, path)
            write_label_pyramid(labels, files["masks"], size.mpp)
            geojson.write(files["geojson"], nucleus_features(labels, boxes, run.probability))
            write_png_atomic(files["overlays"], slide_overview(slide, run.probability, m.threshold, truth))
            scored = score_slide(run.probability, labels, truth, m.threshold) if truth is not None else None
            a = Assessment(m.threshold, labels, scored and scored.pixels, scored and scored.objects)
            rows.append(row(path.name, m.name, a, seconds, size.mpp, scale.factor, views))
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            log(f"{path.name}, {m.name}: {run.blocks_run} blocks run, {run.blocks_skipped} of glass skipped, "
                f"{len(boxes):,} nuclei, {seconds:.0f} s; peak memory so far {peak:,.0f} MB")
            del labels, run
            for leftover in ("probability.npy", "labels.npy", "state.json"):
                (work / leftover).unlink(missing_ok=True)
        return rows


def slide_overview(slide, probability, threshold: float, truth, max_side: int = 4096) -> np.ndarray:
    """The slide at most ``max_side`` pixels a side, with the default layers over it."""
    import math

    import cv2

    from paipviewer.viewer.layers import LayerState, overlay_image

    thumb, down = slide.thumbnail(max_side)
    size = (thumb.shape[1], thumb.shape[0])
    step = max(1, int(down))
    pred = cv2.resize(np.asarray(probability[::step, ::step]), size, interpolation=cv2.INTER_NEAREST)
    pred = pred >= math.ceil(threshold * 255)
    true = None
    if truth is not None:
        true = cv2.resize((truth[::step, ::step] > 0).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    return overlay_image(thumb, LayerState.default("annotated" if true is not None else "plain"), pred, true)


def summary_lines(rows: list[dict], models: list[ScoreModel]) -> list[str]:
    lines = []
    for m in models:
        mine = [r for r in rows if r["model"] == m.name]
        scored = [r for r in mine if r["dice"] is not None]
        nuclei = sum(r["nuclei_pred"] for r in mine)
        text = f"{m.name}: {len(mine)} images, {nuclei:,} nuclei"
        if scored:
            tp, fp, fn = (sum(r[k] for r in scored) for k in ("tp", "fp", "fn"))
            pooled = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
            means = ", ".join(f"{k} {np.mean([r[k] for r in scored]):.3f}" for k in SUMMARY)
            text += f"; mean {means}; pooled dice {pooled:.3f} ({len(scored)} with ground truth)"
        lines.append(text)
    if len(models) == 2:
        a, b = models
        by_image = {}
        for r in rows:
            if r["dice"] is not None:
                by_image.setdefault(r["image"], {})[r["model"]] = r["dice"]
        paired = [v for v in by_image.values() if len(v) == 2]
        if paired:
            test = wilcoxon([v[a.name] for v in paired], [v[b.name] for v in paired])
            lines.append(f"dice, {a.name} against {b.name}: {test.verdict(a.name, b.name)}")
    return lines


def run(args: argparse.Namespace, log=print) -> int:
    if args.threshold is not None and not 0 < args.threshold < 1:
        raise ScoreError("--threshold must be between 0 and 1")
    if args.mpp is not None and not plausible(args.mpp):
        raise ScoreError("--mpp must be a microscope's pixel size, 0.05 to 20 microns")
    pairs, problems = gather(args.paths)
    for p in problems:
        log(f"not scored: {p}")
    if not pairs:
        raise ScoreError("no images to score")
    if args.truth is not None:
        if len(pairs) != 1:
            raise ScoreError(f"--truth is one image's ground truth, but {len(pairs)} images were given")
        if not Path(args.truth).is_file():
            raise ScoreError(f"--truth {args.truth}: no such file")
        pairs = [(pairs[0][0], Path(args.truth))]
    models = [open_model(args.model, args.models_dir, args.threshold)]
    if args.compare:
        models.append(open_model(args.compare, args.models_dir, args.threshold))
        if models[1].name == models[0].name:
            raise ScoreError(f"--model and --compare are both {models[0].name}; their outputs would share folders")
    try:
        out = check_writable_folder(args.out, "--out")
        planned = [out / SCORES] + [p for image, _ in pairs for m in models
                                    for p in output_paths(out, m.name, image).values()]
        check_new_files(planned, "--out", args.overwrite)
    except OSError as exc:  # our sentences; an OSError made of (errno, sentence) would print "[Errno 13] " first
        raise ScoreError(exc.strerror or str(exc)) from None
    views = "" if args.views == 1 else f", {args.views} views a tile"
    names = [f"{m.name} ({m.loaded.runtime}, threshold {m.threshold:g}{views})" for m in models]
    log(f"scoring {len(pairs)} images with {' and '.join(names)} into {out}")
    rows, failed = [], len(problems)
    for k, (image, mask) in enumerate(pairs, 1):
        try:
            score = score_slide_file if is_slide(image) else score_image
            new = score(image, mask, models, out, log, args.mpp, not args.no_rescale, args.views)
            write_text_atomic(out / SCORES, rows_to_csv(rows + new, COLUMNS))  # a killed run keeps what it did
        except ImageReadError as exc:
            log(f"not scored: {exc}")
            failed += 1
            continue
        except OSError as exc:  # the disk filled up or went away: scores.csv holds the images before this
            kept = f"the {len(rows)} rows before it are kept in {out / SCORES}" if rows else "no rows were written"
            raise ScoreError(f"cannot write the results for {image.name} ({exc.strerror or exc}); {kept}") from None
        rows += new
        dice = ", ".join(f"{r['model']} dice {r['dice']:.3f}" if r["dice"] is not None
                         else f"{r['model']} {r['nuclei_pred']} nuclei" for r in new)
        log(f"[{k}/{len(pairs)}] {image.name}: {dice}")
    for line in summary_lines(rows, models):
        log(line)
    if failed:
        log(f"{failed} input(s) not scored; see above")
    return 1 if failed else 0


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except ScoreError as exc:
        print(f"paipviewer score: error: {exc}", file=sys.stderr)
        return 2
