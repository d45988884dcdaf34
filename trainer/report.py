"""report.md and tradeoff.png for ``paip-train evaluate``: our rows beside the study's Table V."""
from __future__ import annotations

from pathlib import Path

from paipviewer.core.atomic import atomic_path, write_text_atomic

from .params import study_rows

NAMES = {"unet": "U-Net", "elunet": "ELU-Net"}
REPORT, PLOT = "report.md", "tradeoff.png"


def _fmt(value, digits=3) -> str:
    if value in (None, ""):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


SPLIT_WORDS = {"test": "test images (never used in training or validation)",
               "val": "validation images (held out of training; for choosing models, not for reporting)",
               "all": "images (every image of the folder: use on data no model was trained on)"}


def markdown(rows: list[dict], data: Path, n_test: int, tiles: int, seed: int, runs: int,
             split: str = "test", views: int = 1) -> str:
    study = study_rows()
    lines = [
        "# Evaluation report",
        "",
        f"Data: `{data}`, {n_test} {SPLIT_WORDS[split]}. "
        f"Study protocol: {tiles} random 256x256 {split} tiles (seed {seed}); whole images by sliding window.",
        f"Times: median of {runs} runs on this machine's CPU, wall clock; `load` reads the model file, "
        f"`57 tiles` is the {tiles} predictions one tile at a time; TensorFlow's import is measured apart.",
        *([] if views == 1 else [
            f"Test-time augmentation: every tile, timed ones included, is the mean of the model's outputs on "
            f"{views} dihedral views of it (quarter turns, mirrored or not), so times are about {views} times "
            f"the model's alone."]),
        "",
        "| model | params | study params | MB | MB with Adam | study MB | Jaccard 57 | mean IoU 57 | study Jaccard "
        "| Dice tiles | Jaccard image | Dice image | load s | 57 tiles s | study s | epochs | train min | trained on |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    labels = [f"{NAMES.get(r['architecture'], r['architecture'])} {r['filters']}/{r['depth']}" for r in rows]
    for r, label in zip(rows, labels):
        s = study.get((r["architecture"], int(r["filters"]), int(r["depth"])), {})
        if labels.count(label) > 1:
            label += f" (`{r['model']}`)"
        lines.append(
            f"| {label} | {r['params']:,} "
            f"| {_fmt(s.get('params'))} | {r['file_mb']:.2f} | {r['file_mb_with_optimizer']:.2f} | {_fmt(s.get('size_mb'))} "
            f"| {r['jaccard_57']:.3f} | {r['mean_iou_57']:.3f} | {_fmt(s.get('jaccard'))} | {r['dice_tiles']:.3f} "
            f"| {r['jaccard_image']:.3f} | {r['dice_image']:.3f} | {r['load_s']:.2f} | {r['predict57_s']:.2f} "
            f"| {_fmt(s.get('time_s'))} | {_fmt(r.get('epochs'))} | {_fmt(r.get('train_minutes'), 1)} "
            f"| {r.get('train_device') or ''} |")
    lines += [
        "",
        "Nuclei as objects (whole images; touching nuclei split as in `paipviewer/core/objects.py`): counts "
        "summed over images, the scores averaged over images; a match is IoU >= 0.5. `images.csv` has every image.",
        "",
        "| model | nuclei predicted | nuclei true | detection F1 | AJI | PQ |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r, label in zip(rows, labels):
        lines.append(f"| {label} | {r['nuclei_pred']:,} | {r['nuclei_true']:,} | {r['det_f1']:.3f} "
                     f"| {r['aji']:.3f} | {r['pq']:.3f} |")
    tf_s = rows[0]["tf_import_s"] if rows else None
    lines += [
        "",
        f"Importing TensorFlow and Keras in a fresh interpreter: {_fmt(tf_s, 2)} s (not in the times above).",
        "",
        "## Reading the Jaccard figures",
        "",
        "`Jaccard 57` is foreground (nucleus) Jaccard, TP / (TP + FP + FN), averaged over tiles, as the study "
        "defines it. `mean IoU 57` averages it with the background's Jaccard (the Keras `MeanIoU` convention); "
        "background is most of every tile, so this figure is much higher. A tile with no nucleus and no prediction "
        "scores 1.0, one with a prediction 0.0 (see `paipviewer/core/metrics.py`); "
        + ", ".join(f"{r['empty_tiles_57']} of {tiles}" for r in rows[:1]) +
        " sampled tiles had no nucleus here. The study's 0.93 on tumour nuclei sits closer to a two-class mean "
        "IoU than to a nucleus Jaccard on this kind of data; its text defines the per-tile Jaccard only.",
        "",
        "Study figures are from its Table V (PAIP 2023 pancreas, Kaggle CPU); ours are on the data above, so "
        "compare the trade-off (accuracy against size and time), not the absolute numbers.",
        "",
        "![accuracy against size and time](tradeoff.png)",
        "",
    ]
    return "\n".join(lines)


def _label_points(ax, points: list[tuple[float, float, str]], fontsize: float = 10) -> None:
    """Write each label at the nearest place beside its point, inside the axes, where it covers no
    marker and no label already written; one that had to move a row or more away gets a thin line to
    its point, so it is never read as the label of a neighbour. Variants of one size or speed sit on
    top of each other (ELU-Net 8/4 and 4/5; 8/5 and 16/4)."""
    ax.autoscale_view()
    to_points = 72 / ax.figure.dpi  # display pixels -> typographic points, the unit of the offsets
    left, bottom, right, top = (v * to_points for v in ax.bbox.extents)
    where = [tuple(v * to_points for v in ax.transData.transform((x, y))) for x, y, _ in points]
    placed = [(px - 4, py - 4, px + 4, py + 4) for px, py in where]  # the markers, which no label may cover
    for (x, y, text), (px, py) in sorted(zip(points, where), key=lambda p: (p[1][1], p[1][0])):
        w, h = 0.62 * fontsize * len(text), fontsize
        near = (2, -h - 2, h + 2)  # beside the marker: level with it, below, above
        further = [v for ring in (1, 2, 3) for v in ((ring + 1) * (h + 2), -(ring + 1) * (h + 2))]
        sides = [(dx, dy) for dy in near for dx in (4, -w - 4)]
        sides += [(dx, dy) for dy in further for dx in (4, -w - 4, -w / 2)]  # these get a line
        inside = [(dx, dy) for dx, dy in sides
                  if left <= px + dx and px + dx + w <= right and bottom <= py + dy and py + dy + h <= top]

        def clashes(side) -> bool:
            box = (px + side[0], py + side[1], px + side[0] + w, py + side[1] + h)
            if any(box[0] < o[2] and o[0] < box[2] and box[1] < o[3] and o[1] < box[3] for o in placed):
                return True
            # without a line, a label must be nearer its own marker than any other
            return side[1] in near and any(_gap(box, q) < _gap(box, (px, py)) for q in where if q != (px, py))

        dx, dy = next((side for side in inside if not clashes(side)), (inside or sides)[0])
        placed.append((px + dx, py + dy, px + dx + w, py + dy + h))
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=fontsize,
                    arrowprops=None if dy in near else dict(arrowstyle="-", lw=0.6, color="0.4", shrinkA=1, shrinkB=4))


def _gap(box: tuple, point: tuple) -> float:
    """Distance from a point to the nearest point of a box (0 inside it)."""
    dx = max(box[0] - point[0], 0, point[0] - box[2])
    dy = max(box[1] - point[1], 0, point[1] - box[3])
    return (dx * dx + dy * dy) ** 0.5


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    study = study_rows()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = {"unet": "#0072B2", "elunet": "#D55E00"}
    labels: tuple[list, list] = ([], [])
    for arch in ("unet", "elunet"):
        pts = [(float(r["params"]), float(r["time_s"]), float(r["jaccard"]), f"{k[1]}/{k[2]}")
               for k, r in study.items() if k[0] == arch and r["jaccard"]]
        if pts:
            axes[0].scatter([p[0] for p in pts], [p[2] for p in pts], marker="o", facecolors="none",
                            edgecolors=colours[arch], label=f"study {NAMES[arch]}")
            axes[1].scatter([p[1] for p in pts], [p[2] for p in pts], marker="o", facecolors="none",
                            edgecolors=colours[arch], label=f"study {NAMES[arch]}")
        ours = [r for r in rows if r["architecture"] == arch]
        for r in ours:
            label = f"{r['filters']}/{r['depth']}"
            axes[0].scatter(r["params"], r["jaccard_57"], marker="s", color=colours[arch])
            axes[1].scatter(r["total57_s"], r["jaccard_57"], marker="s", color=colours[arch])
            labels[0].append((r["params"], r["jaccard_57"], label))
            labels[1].append((r["total57_s"], r["jaccard_57"], label))
        if ours:
            axes[0].scatter([], [], marker="s", color=colours[arch], label=f"ours {NAMES[arch]}")
    for ax in axes:  # sizes and times both span orders of magnitude; a linear axis crowds the small ones
        ax.set_xscale("log")
    axes[0].set_xlabel("parameters")
    axes[1].set_xlabel("seconds, model load + 57 tile predictions (CPU)")
    axes[1].xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    axes[1].xaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    for ax in axes:
        ax.set_ylabel("mean per-tile Jaccard")
        ax.grid(alpha=0.3)
        ax.margins(y=0.15)  # room for labels below the lowest markers, ours
    axes[0].legend(fontsize=8)
    fig.suptitle("Accuracy against size and time: ours (filled) and the study's Table V (open)")
    fig.tight_layout()  # before the labels: they are placed on the axes' final size
    for ax, points in zip(axes, labels):
        _label_points(ax, points)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def write_report(rows: list[dict], out: Path, data: Path, n_test: int, tiles: int, seed: int, runs: int,
                 split: str = "test", views: int = 1) -> None:
    out.mkdir(parents=True, exist_ok=True)
    plot(rows, out / PLOT)
    write_text_atomic(out / REPORT, markdown(rows, data, n_test, tiles, seed, runs, split, views))
