"""``paip-train evaluate``: the study's Table V for any set of model files, on the test split.

``--split val`` scores the validation images instead, so a choice between models (say, a model
trained further against the one it started from) never looks at the test set; ``--split all``
scores every image of the folder (data that no model was trained on). A folder without a test/
split is split by seed, and evaluate says which images that leaves and how to score them all.

Per model:

- ``params``; ``file_mb`` (our inference-only file) and ``file_mb_with_optimizer`` (the same
  weights saved with an Adam state, as the study's files evidently were: ~12 bytes/parameter).
- The study's protocol: ``tiles`` (57) seeded random 256x256 tiles of the test images (each image
  equalised whole, then cut without overlap, as in training); per-tile Jaccard averaged
  (``jaccard_57``), and beside it the two-class mean IoU (foreground and background averaged)
  and how many of the tiles hold no nucleus, so a reader can tell which definition a published
  figure fits. The same over every test tile (``jaccard_tiles``, ``dice_tiles``).
- Whole images: sliding window with overlap over each full test image; per-image Jaccard and Dice
  averaged over images (``jaccard_image``, ``dice_image``) and pooled over all pixels; nuclei as
  objects (:mod:`paipviewer.core.objects`): counts summed over images, detection F1, AJI and PQ
  averaged over images. ``images.csv`` has a row per image and model with the columns of
  ``paipviewer score``'s scores.csv, computed by the same function.
- Time on this CPU: loading the model file (``load_s``) and the 57 predictions one tile at a
  time (``predict57_s``), median of ``runs`` repeats in this process; importing TensorFlow is
  measured apart in a fresh interpreter (``tf_import_s``), since the study's figure cannot tell.
"""
from __future__ import annotations

import csv
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from paipviewer.core.atomic import write_text_atomic
from paipviewer.core.evidence import assess, row as image_row, rows_to_csv as image_rows_to_csv, truth_labels
from paipviewer.core.imageio import ImageReadError, read_image
from paipviewer.core.inference import DEFAULT_OVERLAP, check_views, predict_tiles
from paipviewer.core.magnification import image_pixel_size, plan_scale, predict_at_scale
from paipviewer.core.metrics import mean_score, pooled
from paipviewer.core.objects import ObjectSettings
from paipviewer.core.scoring import tile_confusions
from paipviewer.core.modelfile import load_model, model_files, training_totals
from paipviewer.core.preprocess import to_float

from .fit import predict_uint8_tiles
from .flops import sgemm_gflops
from paipviewer.core.outputs import check_new_files, check_writable_folder
from .prepare import PrepareSettings, select_samples, split_samples, tiles_of
from .report import PLOT, REPORT, write_report

COLUMNS = ["model", "architecture", "filters", "depth", "params", "file_mb", "file_mb_with_optimizer",
           "jaccard_57", "mean_iou_57", "empty_tiles_57", "jaccard_tiles", "dice_tiles", "jaccard_image",
           "dice_image", "jaccard_pooled", "dice_pooled", "nuclei_pred", "nuclei_true", "det_f1", "aji", "pq", "load_s", "predict57_s", "total57_s", "tf_import_s",
           "gemm_gflops", "epochs", "train_minutes", "train_device", "views"]
RESULTS = "results.csv"
IMAGES = "images.csv"
SPLITS = ("test", "val", "all")


def backend_of(path: Path) -> str | None:
    """The format a model was given in is the one scored and timed (a card alone: the fastest)."""
    return path.suffix.lstrip(".") if path.suffix in (".keras", ".onnx") else None


def pick_tiles(n_total: int, n: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(n_total, size=min(n, n_total), replace=False))


def tf_import_seconds() -> float:
    code = "import time; t = time.perf_counter(); import keras, tensorflow; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def size_with_optimizer(loaded) -> int | None:
    """Bytes of the model's .keras saved with an Adam state (None for a model without a .keras)."""
    import keras

    if loaded.backend != "keras":
        keras_file = model_files(loaded.path).get(".keras")
        if keras_file is None:
            return None
        loaded = load_model(keras_file, backend="keras")
    model = loaded.model
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="binary_crossentropy")
    model.optimizer.build(model.trainable_variables)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "with_optimizer.keras"
        model.save(path)
        return path.stat().st_size


def timed_57(path: Path, tiles: np.ndarray, runs: int, views: int = 1) -> tuple[float, float]:
    """Median seconds to load the model file, and to predict the tiles one at a time after it."""
    loads, predicts = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        loaded = load_model(path, backend=backend_of(path))
        t1 = time.perf_counter()
        predict_tiles(loaded.model, tiles, batch=1, views=views)
        t2 = time.perf_counter()
        loads.append(t1 - t0)
        predicts.append(t2 - t1)
    return statistics.median(loads), statistics.median(predicts)


def evaluate_model(path: Path, test, n_tiles: int, seed: int, runs: int, log=print,
                   mpp: float | None = None, views: int = 1) -> tuple[dict, list[dict]]:
    """One model's results row and its per-image rows. Whole images run at the model's scale (see
    :mod:`paipviewer.core.magnification`); ``mpp`` is the pixel size of images that do not say.
    Every figure of the row, times included, is of the model with ``views`` dihedral views a tile."""
    loaded = load_model(path, backend=backend_of(path))
    card, model = loaded.card, loaded.model
    # The test images as training saw its images: equalised whole, cut without overlap, not flipped.
    x, y, _ = tiles_of(test, PrepareSettings(equalize=card.equalize, flips=False))
    chosen = pick_tiles(len(x), n_tiles, seed)
    x57 = to_float(x[chosen])
    load_s, predict_s = timed_57(path, x57, runs, views)
    probs = predict_uint8_tiles(model, x, views=views)
    per_tile = tile_confusions(probs, y, [card.threshold])[card.threshold]
    tiles57 = [per_tile[i] for i in chosen]
    per_image, objects, image_rows = [], [], []
    settings = ObjectSettings.from_dict(card.objects)
    for s in test:
        image = read_image(s.image)
        t0 = time.perf_counter()
        size = image_pixel_size(s.image, mpp)
        scale = plan_scale(size, card.mpp)
        pred = predict_at_scale(model, image, card.equalize, scale, overlap=DEFAULT_OVERLAP, batch=8, views=views)
        seconds = time.perf_counter() - t0
        a = assess(pred.probability, card.threshold, truth_labels(s.mask, image.shape[:2]), settings)
        per_image.append(a.pixels)
        objects.append(a.objects.scores)
        image_rows.append(image_row(s.image.name, path.name, a, seconds, size.mpp, scale.factor, views))
    whole = pooled(per_image)
    epochs, seconds = training_totals(card.training)  # all runs, when a model was trained further
    row = {
        "model": path.name, "architecture": card.architecture, "filters": card.filters, "depth": card.depth,
        "params": card.params, "file_mb": loaded.file_bytes / 1e6,
        "file_mb_with_optimizer": (size_with_optimizer(loaded) or float("nan")) / 1e6,
        "jaccard_57": mean_score(tiles57), "mean_iou_57": mean_score(tiles57, "mean_iou"),
        "empty_tiles_57": sum(1 for i in chosen if not y[i].any()),
        "jaccard_tiles": mean_score(per_tile), "dice_tiles": mean_score(per_tile, "dice"),
        "jaccard_image": mean_score(per_image), "dice_image": mean_score(per_image, "dice"),
        "jaccard_pooled": whole.jaccard, "dice_pooled": whole.dice,
        "nuclei_pred": sum(o.n_pred for o in objects), "nuclei_true": sum(o.n_true for o in objects),
        "det_f1": float(np.mean([o.f1 for o in objects])), "aji": float(np.mean([o.aji for o in objects])),
        "pq": float(np.mean([o.pq for o in objects])),
        "load_s": load_s, "predict57_s": predict_s, "total57_s": load_s + predict_s,
        "epochs": "" if epochs is None else epochs,
        "train_minutes": "" if seconds is None else round(seconds / 60, 1),
        # Cards from before fit recorded the device were all trained on the CPU.
        "train_device": card.training.get("device", "cpu") if "epochs_run" in card.training else "",
        "views": views,
    }
    log(f"{path.name}{'' if views == 1 else f' ({views} views)'}: jaccard_57 {row['jaccard_57']:.3f}, "
        f"dice_image {row['dice_image']:.3f}, {row['total57_s']:.1f} s for 57 tiles")
    return row, image_rows


def evaluate(models: list[Path], data: Path, out: Path, settings: PrepareSettings = PrepareSettings(),
             seed: int = 42, runs: int = 3, tiles: int = 57, split: str = "test", overwrite: bool = False,
             log=print, views: int = 1) -> tuple[list[dict], dict[str, str]]:
    """Score ``models`` on the ``split`` images: "test" to report, "val" to choose between models;
    each tile predicted as the mean of ``views`` dihedral views (test-time augmentation; 1: none).

    Returns the rows of the models scored and, by name, why any other could not be scored.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose {', '.join(SPLITS)}")
    check_views(views)
    out = check_writable_folder(out, "--out")
    check_new_files([out / name for name in (RESULTS, IMAGES, REPORT, PLOT)], "--out", overwrite)
    images = images_to_score(Path(data), settings, split, log)
    tf_s = tf_import_seconds()
    gemm = sgemm_gflops()  # the machine's limit beside this run's times: the CPU changes between sessions
    models = [Path(p) for p in models]
    rows, image_rows, failed = [], [], {}
    for path, name in zip(models, model_names(models)):
        try:
            row, per_image = evaluate_model(path, images, tiles, seed, runs, log, settings.mpp, views)
        except ImageReadError:  # the data's fault, not the model's: every model would fail on it
            raise
        except (ValueError, OSError) as exc:  # a damaged or foreign file: the other models are still scored
            failed[name] = _named(name, path, exc)
            log(f"{name}: not scored")
            continue
        row.update(model=name, tf_import_s=tf_s, gemm_gflops=gemm)
        rows.append(row)
        image_rows += [{**r, "model": name} for r in per_image]
    if rows:
        write_text_atomic(out / RESULTS, rows_to_csv(rows))
        write_text_atomic(out / IMAGES, image_rows_to_csv(image_rows))
        write_report(rows, out, data=Path(data), n_test=len(images), tiles=tiles, seed=seed, runs=runs, split=split,
                     views=views)
        log(f"wrote {out / RESULTS}, {out / IMAGES}, {out / REPORT}, {out / PLOT}")
    return rows, failed


def images_to_score(data: Path, settings: PrepareSettings, split: str, log=print) -> list:
    """The images of ``split``; on a folder without its own test/ split, say which ones and why."""
    samples = select_samples(data, settings)
    if split == "all":
        return sorted(samples, key=lambda s: (s.split or "", s.name))
    images = getattr(split_samples(samples, settings), split)
    if not images:
        raise ValueError(f"{data}: the split has no {split} images")
    if not any(s.split == "test" for s in samples):
        names = ", ".join(s.name for s in images[:8]) + (", ..." if len(images) > 8 else "")
        log(f"{data} has no test/ folder: scoring the {split} images of the seeded split (seed {settings.seed}), "
            f"{len(images)} of {len(samples)}: {names}. Pass --split all to score every image.")
    return images


def _named(name: str, path: Path, exc: Exception) -> str:
    """Why ``path`` was not scored, in one line that names it once (model file errors begin with its name)."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    return f"{name}: {reason.removeprefix(f'{path.name}: ')}"


def model_names(paths: list[Path]) -> list[str]:
    """File names, or folder/name where two share a name (a model trained further and the one it started from)."""
    names = [p.name for p in paths]
    return [f"{p.parent.name}/{p.name}" if names.count(p.name) > 1 else p.name for p in paths]


def rows_to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, COLUMNS, lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items() if k in COLUMNS})
    return buf.getvalue()

