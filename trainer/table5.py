"""``paip-train table5``: the study's 18 variants row by row beside its Table V, trained or honestly marked.

A variant that an ``evaluate`` results.csv scored takes its scores, size and training from that row (the
first file given that has it wins). A variant no file scored keeps its accuracy cells empty, its status
says "not trained here (needs a GPU)" and the report gives the command that trains it: no accuracy figure
is ever filled in that a model did not earn. It is built untrained for its parameters and file size with
and without an Adam state.

Every variant, trained or not, is timed here, in one run: load + 57 predictions on this CPU with Keras'
initial weights, which do the same arithmetic as trained ones. The evaluate runs behind the trained rows
may have run on other CPUs (the CPU changes between sessions), so their own times are not comparable
with each other or with the untrained rows; one run makes the whole column one machine's. Each row also
gets its convolution GFLOP per tile and the rate its 57 predictions reached, as a share of the float32
GEMM rate measured in the same run. ``measure=False`` times nothing: the trained rows keep their
evaluate runs' times, without a share.
"""
from __future__ import annotations

import csv
import io
import shutil
import tempfile
from pathlib import Path

from paipviewer.core.atomic import write_text_atomic
from paipviewer.core.modelfile import ModelCard, load_model, save_model
from paipviewer.core.outputs import check_new_files, check_writable_folder
from paipviewer.core.preprocess import to_float

from .params import study_rows
from .prepare import PrepareSettings, tiles_of
from .flops import conv_gflop, sgemm_gflops
from .report import NAMES, PLOT, _fmt, plot
from .variants import grid_variants, variant_id

TABLE, CSV = "table5.md", "table5.csv"
NOT_TRAINED = "not trained here (needs a GPU)"
TIMES = ("load_s", "predict57_s", "total57_s")
COLUMNS = ["variant", "architecture", "filters", "depth", "status", "model", "params", "file_mb",
           "file_mb_with_optimizer", "jaccard_57", "dice_image", "aji", "det_f1", *TIMES,
           "gflop_tile", "gflops", "gemm_gflops", "of_gemm", "epochs", "train_minutes", "train_device",
           "study_params", "study_size_mb", "study_jaccard", "study_time_s", "study_note"]


def read_results(paths: list[Path]) -> dict[tuple[str, int, int], dict]:
    """Rows of ``evaluate``'s results.csv files by variant; the first file that scored a variant wins.
    Rows scored with test-time augmentation (``views`` > 1) are left out: Table V compares the
    models themselves, their times included."""
    found: dict[tuple[str, int, int], dict] = {}
    for path in paths:
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("views", "1") not in ("", "1"):
                    continue
                key = (row["architecture"], int(row["filters"]), int(row["depth"]))
                found.setdefault(key, {**row, "source": str(path)})
    return found


def measure_variant(architecture: str, filters: int, depth: int, tiles57, runs: int, work: Path) -> dict:
    """Parameters, GFLOP per tile, file sizes and load + 57 tile time of a variant with Keras' initial weights."""
    import keras

    from .evaluate import size_with_optimizer, timed_57
    from .models import build_model

    path = work / f"{variant_id(architecture, filters, depth)}.keras"
    try:
        model = build_model(architecture, filters, depth, input_size=None)
        card = ModelCard(architecture=architecture, filters=filters, depth=depth,
                         params=int(model.count_params()), training={"data": "untrained (table5 timing)"})
        gflop = conv_gflop(model)  # from the model built here: U-Net 128/6 is 2 GB to build again
        save_model(model, card, path, overwrite=True)
        del model
        keras.backend.clear_session()
        with_adam = size_with_optimizer(load_model(path, backend="keras"))
        keras.backend.clear_session()
        load_s, predict_s = timed_57(path, tiles57, runs)
        keras.backend.clear_session()
        return {"params": card.params, "gflop_tile": gflop, "file_mb": path.stat().st_size / 1e6,
                "file_mb_with_optimizer": (with_adam or float("nan")) / 1e6,
                "load_s": load_s, "predict57_s": predict_s, "total57_s": load_s + predict_s}
    finally:
        for p in (path, path.with_suffix(".json")):
            p.unlink(missing_ok=True)


def timing_tiles(data: Path, settings: PrepareSettings, n_tiles: int, seed: int):
    """The test tiles ``evaluate`` times its 57 predictions on, so this run times the same inputs."""
    from .evaluate import images_to_score, pick_tiles

    test = images_to_score(Path(data), settings, "test", log=lambda *_: None)
    x, _, _ = tiles_of(test, PrepareSettings(equalize=settings.equalize, flips=False))
    return to_float(x[pick_tiles(len(x), n_tiles, seed)])


def table5(results: list[Path], data: Path, out: Path, settings: PrepareSettings = PrepareSettings(),
           variants: list[tuple[str, int, int]] | None = None, runs: int = 1, tiles: int = 57, seed: int = 42,
           measure: bool = True, overwrite: bool = False, log=print) -> list[dict]:
    """Write table5.csv, table5.md and tradeoff.png to ``out``; return the rows, in Table V order."""
    out = check_writable_folder(out, "--out")
    check_new_files([out / name for name in (TABLE, CSV, PLOT)], "--out", overwrite)
    trained, study = read_results([Path(p) for p in results]), study_rows()
    variants = grid_variants() if variants is None else variants
    tiles57 = timing_tiles(data, settings, tiles, seed) if measure else None
    gemm = sgemm_gflops() if measure else None
    rows = []
    work = Path(tempfile.mkdtemp(prefix="table5-", dir=out))
    try:
        for key in variants:
            s = study.get(key, {})
            row = {"variant": variant_id(*key), "architecture": key[0], "filters": key[1], "depth": key[2],
                   **{f"study_{k}": s.get(k) or "" for k in ("params", "size_mb", "jaccard", "time_s", "note")}}
            if key in trained:
                r = trained[key]
                kept = [k for k in COLUMNS if k in r and not k.startswith("study_") and k != "gemm_gflops"
                        and not (measure and k in TIMES)]
                row.update({k: r[k] for k in kept}, status="trained", model=r["model"])
            else:
                row["status"] = NOT_TRAINED
            if tiles57 is not None:
                log(f"{row['variant']}: timing load + {tiles} tiles" + ("" if key in trained else ", measuring size"))
                try:
                    measured = measure_variant(*key, tiles57, runs, work)
                    row.update(measured if key not in trained else
                               {k: measured[k] for k in (*TIMES, "gflop_tile")})
                    rate = measured["gflop_tile"] * tiles / measured["predict57_s"]
                    row.update(gflops=rate, gemm_gflops=gemm, of_gemm=rate / gemm)
                except (MemoryError, ValueError, OSError) as exc:
                    why = f"not measured: {' '.join(str(exc).split())[:120]}"
                    if key in trained:  # its scores stand; its time cells stay empty
                        log(f"{row['variant']}: {why}")
                    else:
                        row["status"] += f"; {why}"
            rows.append(row)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_text_atomic(out / CSV, rows_to_csv(rows))
    scored = [{**r, **{k: float(r[k]) for k in ("jaccard_57", "total57_s")}, "params": int(r["params"])}
              for r in rows if r["status"] == "trained" and r.get("total57_s") not in (None, "")]
    plot(scored, out / PLOT)
    write_text_atomic(out / TABLE, markdown(rows, runs, gemm))
    log(f"wrote {out / CSV}, {out / TABLE}, {out / PLOT}")
    return rows


def rows_to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, COLUMNS, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for row in rows:
        w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue()


def _num(value, digits=3) -> str:
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return f"{int(value):,}"
    try:
        return _fmt(float(value), digits)
    except (TypeError, ValueError):
        return _fmt(value, digits)


def markdown(rows: list[dict], runs: int, gemm: float | None = None) -> str:
    lines = [
        "| variant | params | study params | MB | MB with Adam | study MB | Jaccard 57 | study Jaccard | Dice image "
        "| AJI | det F1 | load + 57 tiles s | study s | GFLOP/tile | % of GEMM | epochs | train min | trained on |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        label = f"{NAMES[r['architecture']]} {r['filters']}/{r['depth']}"
        study_params = "not built" if "could not be built" in r["study_note"] else _num(r["study_params"])
        where = (r.get("train_device") or "") if r["status"] == "trained" else r["status"]
        lines.append(
            f"| {label} | {_num(r.get('params'))} | {study_params} | {_num(r.get('file_mb'), 2)} "
            f"| {_num(r.get('file_mb_with_optimizer'), 2)} | {_num(r['study_size_mb'], 2)} "
            f"| {_num(r.get('jaccard_57'))} | {_num(r['study_jaccard'])} | {_num(r.get('dice_image'))} "
            f"| {_num(r.get('aji'))} | {_num(r.get('det_f1'))} | {_num(r.get('total57_s'), 1)} "
            f"| {_num(r['study_time_s'], 1)} | {_num(r.get('gflop_tile'), 1)} "
            f"| {_num(100 * r['of_gemm'], 0) if r.get('of_gemm') not in (None, '') else '–'} "
            f"| {_fmt(r.get('epochs'))} | {_num(r.get('train_minutes'), 1)} | {where} |")
    missing = [r["variant"] for r in rows if r["status"] != "trained"]
    timing = (f"Times: load + 57 predictions one tile at a time, every row in this one run on this machine's CPU, "
              f"median of {runs} run(s), with Keras' initial weights (the same arithmetic as trained ones). "
              "GFLOP/tile counts every convolution's multiply-adds x2 at 256x256; % of GEMM is the rate the 57 "
              f"predictions reached against this CPU's float32 GEMM rate (NumPy, 2048x2048) in the same run: "
              f"{gemm:.0f} GFLOP/s." if gemm else
              "Times: a trained row's own `evaluate` run (runs may have been on different CPUs); "
              "no other row was timed.")
    lines += ["", timing + " Study figures: its Table V (PAIP 2023 pancreas, Kaggle CPU); an empty study cell is a "
              "variant it could not build."]
    if missing:
        lines += ["", f"Not trained here: {', '.join(missing)}. `paip-train grid --only {' '.join(missing)}` with "
                  "the recipe in `recipe_v2.md` trains them (a GPU: `--engine ray --gpus-per-trial 0.25`)."]
    return "\n".join(lines) + "\n"
