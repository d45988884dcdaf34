"""The results table, its summary and the plots' data, from the state: a row per open image, the
pixel and nucleus scores of both models at their thresholds now. Qt-free (the dock only renders).

Every figure is read from the session when asked: Dice and Jaccard from the level counts (so they
follow the threshold at once), nuclei, detection F1, AJI and PQ from the object assessments (so
they read as pending until the nuclei at the threshold now are known).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from paipviewer.core import scoring
from paipviewer.core.stats import Paired, wilcoxon

from .describe import PENDING
from .images import ImageEntry
from .session import Session

NO_TRUTH = "—"  # a figure that needs ground truth, on an image without

# (key, header, kind): each model's columns.
MODEL_METRICS = (("dice", "Dice", "score"), ("jaccard", "Jaccard", "score"), ("aji", "AJI", "score"),
                 ("pq", "PQ", "score"), ("det_f1", "Det. F1", "score"), ("nuclei_pred", "Nuclei", "count"),
                 ("seconds", "Seconds", "seconds"))
TIPS = {"dice": "Pixel Dice (F1) against the ground truth", "jaccard": "Pixel Jaccard (IoU)",
        "aji": "Aggregated Jaccard Index of the nuclei (Kumar et al. 2017)",
        "pq": "Panoptic quality of the nuclei: detection F1 x mean IoU of the matched pairs",
        "det_f1": "Detection F1 of the nuclei, matched at IoU >= 0.5",
        "nuclei_pred": "Nuclei the model found at its threshold (touching ones split)",
        "seconds": "Seconds the model took on the image (without loading it)",
        "nuclei_true": "Nuclei in the ground truth"}


@dataclass(frozen=True)
class Column:
    key: str        # "image", "nuclei_true", or "<metric>@<side>" (side 0: the model, 1: the compare model)
    title: str
    kind: str       # "text", "score", "count" or "seconds"
    model: str = ""
    tip: str = ""


@dataclass(frozen=True)
class Cell:
    value: float | int | str | None  # what sorts; None (pending, failed, no truth) sorts last
    text: str


@dataclass
class Row:
    key: str
    name: str
    cells: dict[str, Cell] = field(default_factory=dict)


def models(session: Session) -> list[str]:
    return [m for m in (session.model_key, session.compare_key) if m]


def columns(session: Session) -> list[Column]:
    cols = [Column("image", "Image", "text", tip="The image file"),
            Column("nuclei_true", "True nuclei", "count", tip=TIPS["nuclei_true"])]
    for side, model in enumerate(models(session)):
        label = session.label(model) or model
        for key, title, kind in MODEL_METRICS:
            cols.append(Column(f"{key}@{side}", f"{title}\n{label}", kind, model,
                               f"{label} @ {session.threshold(model):.2f}: {TIPS[key]}"))
    return cols


def _number(value, kind: str) -> str:
    if kind == "count":
        return f"{value:,}"
    if kind == "seconds":
        return f"{value:.2f}"
    return f"{value:.3f}"


def model_values(session: Session, entry: ImageEntry, model: str) -> dict[str, Cell]:
    """One model's cells of an image's row."""
    kinds = {key: kind for key, _, kind in MODEL_METRICS}
    if model in entry.failures:
        return {key: Cell(None, "failed" if key == "dice" else "") for key in kinds}
    result = entry.results.get(model)
    if result is None:
        return {key: Cell(None, "") for key in kinds}
    out = {}
    truth = entry.truth is not None
    c = session.confusion(entry, model)
    for key in ("dice", "jaccard"):
        out[key] = Cell(getattr(c, key), _number(getattr(c, key), "score")) if c is not None else Cell(None, NO_TRUTH)
    found = session.assessed(entry, model)
    failed = session.assessment_failed(entry, model)
    if found is None:
        waiting = "failed" if failed else PENDING
        out["nuclei_pred"] = Cell(None, waiting)
        for key in ("aji", "pq", "det_f1"):
            out[key] = Cell(None, waiting if truth else NO_TRUTH)
    else:
        out["nuclei_pred"] = Cell(found.nuclei_pred, _number(found.nuclei_pred, "count"))
        scores = found.objects.scores if found.objects is not None else None
        for key, attr in (("aji", "aji"), ("pq", "pq"), ("det_f1", "f1")):
            value = getattr(scores, attr) if scores is not None else None
            out[key] = Cell(value, _number(value, "score") if value is not None else NO_TRUTH)
    seconds = result.prediction.timing.get("total")
    out["seconds"] = Cell(seconds, _number(seconds, "seconds") if seconds is not None else "")
    return out


def row(session: Session, entry: ImageEntry) -> Row:
    out = Row(entry.key, entry.name)
    out.cells["image"] = Cell(entry.name.casefold(), entry.name)
    if entry.error:
        out.cells["nuclei_true"] = Cell(None, "")
        return out
    n_true = session.truth_count(entry)
    out.cells["nuclei_true"] = Cell(n_true, _number(n_true, "count") if n_true is not None
                                    else "" if not entry.loaded else NO_TRUTH)
    for side, model in enumerate(models(session)):
        for key, cell in model_values(session, entry, model).items():
            out.cells[f"{key}@{side}"] = cell
    return out


def rows(session: Session) -> list[Row]:
    return [row(session, e) for e in session.entries]


# ---------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class ModelSummary:
    model: str
    label: str
    threshold: float
    scored: int                # images the model has run on
    with_truth: int            # of them, with ground truth: the images the scores are over
    jaccard_mean: float | None  # the study's figure: mean per-image Jaccard
    dice_mean: float | None
    dice_pooled: float | None
    jaccard_pooled: float | None
    aji_mean: float | None     # over the images with truth whose nuclei are known
    pq_mean: float | None
    det_f1_mean: float | None
    det_f1_pooled: float | None  # every nucleus of those images counted once
    assessed: int              # images with truth whose nuclei are known
    counted: int               # images whose nuclei are known (with truth or not)
    nuclei_pred: int           # over every image whose nuclei are known
    nuclei_true: int           # over the images with truth whose nuclei are known
    seconds: float             # the model's time over the scored images
    pending: int               # scored images whose nuclei at this threshold are still computed


def model_summary(session: Session, model: str) -> ModelSummary:
    scored = [e for e in session.entries if model in e.results]
    confusions = [c for c in (session.confusion(e, model) for e in scored) if c is not None]
    s = scoring.summarize(confusions) if confusions else None
    assessed = [(e, session.assessed(e, model)) for e in scored]
    known = [(e, a) for e, a in assessed if a is not None]
    matched = [a.objects.scores for _, a in known if a.objects is not None]

    def mean(values):
        return float(np.mean(values)) if values else None

    tp, fp, fn = (sum(getattr(o, k) for o in matched) for k in ("tp", "fp", "fn"))
    return ModelSummary(
        model=model, label=session.label(model) or model, threshold=session.threshold(model), scored=len(scored),
        with_truth=len(confusions), jaccard_mean=s["jaccard_mean"] if s else None,
        dice_mean=s["dice_mean"] if s else None, dice_pooled=s["dice_pooled"] if s else None,
        jaccard_pooled=s["jaccard_pooled"] if s else None,
        aji_mean=mean([o.aji for o in matched]), pq_mean=mean([o.pq for o in matched]),
        det_f1_mean=mean([o.f1 for o in matched]),
        det_f1_pooled=(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0) if matched else None,
        assessed=len(matched), counted=len(known),
        nuclei_pred=sum(a.nuclei_pred for _, a in known), nuclei_true=sum(o.n_true for o in matched),
        seconds=float(sum(e.results[model].prediction.timing.get("total", 0.0) for e in scored)),
        pending=sum(1 for e, a in assessed if a is None and not session.assessment_failed(e, model)))


@dataclass(frozen=True)
class Comparison:
    key: str
    paired: Paired          # the Wilcoxon signed-rank test, model against compare model
    n: int                  # images it is over
    mean_difference: float  # model minus compare model


@dataclass(frozen=True)
class Summary:
    """Everything the footer and its words need, computed in one pass per figure."""
    models: list[ModelSummary]
    comparisons: dict[str, Comparison]  # "dice", "aji" (when both models scored the same images)


def summarize(session: Session) -> Summary:
    comparisons = {key: c for key in ("dice", "aji") if (c := comparison(session, key)) is not None}
    return Summary([model_summary(session, m) for m in models(session)], comparisons)


def summary_rows(session: Session, summary: Summary | None = None) -> list[Row]:
    """The table's footer, under the same columns: "Mean per image" (the study's mean per-image
    Jaccard among them) and "Pooled / total" (every pixel or nucleus counted once, counts summed)."""
    summary = summary or summarize(session)
    mean, total = Row("mean", "Mean per image"), Row("total", "Pooled / total")
    mean.cells["image"] = Cell(None, "Mean per image")
    total.cells["image"] = Cell(None, "Pooled / total")
    truths = [n for n in (session.truth_count(e) for e in session.entries) if n is not None]
    mean.cells["nuclei_true"] = Cell(float(np.mean(truths)) if truths else None,
                                     f"{np.mean(truths):,.1f}" if truths else "")
    total.cells["nuclei_true"] = Cell(sum(truths), f"{sum(truths):,}" if truths else "")
    for side, m in enumerate(summary.models):
        pairs = {"dice": (m.dice_mean, m.dice_pooled), "jaccard": (m.jaccard_mean, m.jaccard_pooled),
                 "aji": (m.aji_mean, None), "pq": (m.pq_mean, None), "det_f1": (m.det_f1_mean, m.det_f1_pooled)}
        for key, (a, b) in pairs.items():
            mean.cells[f"{key}@{side}"] = Cell(a, _f(a) if a is not None else "")
            total.cells[f"{key}@{side}"] = Cell(b, _f(b) if b is not None else "")
        per_image = m.nuclei_pred / m.counted if m.counted else None
        mean.cells[f"nuclei_pred@{side}"] = Cell(per_image, f"{per_image:,.1f}" if per_image is not None else "")
        total.cells[f"nuclei_pred@{side}"] = Cell(m.nuclei_pred, f"{m.nuclei_pred:,}" if m.counted else "")
        seconds = m.seconds / m.scored if m.scored else None
        mean.cells[f"seconds@{side}"] = Cell(seconds, f"{seconds:.2f}" if seconds is not None else "")
        total.cells[f"seconds@{side}"] = Cell(m.seconds, f"{m.seconds:.1f}" if m.scored else "")
    return [mean, total]


def _score(session: Session, entry: ImageEntry, model: str, key: str) -> float | None:
    """One model's ``key`` ("dice", "jaccard", "aji", "pq", "det_f1") on an image with ground truth."""
    if key in ("dice", "jaccard"):
        c = session.confusion(entry, model)
        return getattr(c, key) if c is not None else None
    found = session.assessed(entry, model)
    if found is None or found.objects is None:
        return None
    return getattr(found.objects.scores, "f1" if key == "det_f1" else key)


def paired_scores(session: Session, key: str = "dice") -> tuple[list[str], list[float], list[float]]:
    """Per-image scores of both models over the images with ground truth both have scored (and,
    for object scores, whose nuclei both know): names, model's, compare model's."""
    a, b = session.model_key, session.compare_key
    names, xs, ys = [], [], []
    for e in session.entries:
        if a not in e.results or b not in e.results or e.truth is None:
            continue
        va, vb = _score(session, e, a, key), _score(session, e, b, key)
        if va is not None and vb is not None:
            names.append(e.name)
            xs.append(float(va))
            ys.append(float(vb))
    return names, xs, ys


def comparison(session: Session, key: str = "dice") -> Comparison | None:
    """The two models' per-image ``key`` compared by the Wilcoxon signed-rank test."""
    if not (session.model_key and session.compare_key):
        return None
    names, xs, ys = paired_scores(session, key)
    if not names:
        return None
    return Comparison(key, wilcoxon(xs, ys), len(names), float(np.mean(np.subtract(xs, ys))))


def _f(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def comparison_lines(session: Session, summary: Summary | None = None) -> list[str]:
    """The two models' difference over the images with ground truth both scored: the mean per-image
    difference of Dice and AJI, and the Wilcoxon signed-rank verdict on Dice; and what is still
    being computed."""
    summary = summary or summarize(session)
    lines = []
    dice = summary.comparisons.get("dice")
    if dice is not None:
        a, b = session.label(session.model_key), session.label(session.compare_key)
        text = f"{a} − {b}, mean per image: Dice {dice.mean_difference:+.3f}"
        aji = summary.comparisons.get("aji")
        if aji is not None:
            text += f", AJI {aji.mean_difference:+.3f}"
        lines.append(f"{text}. On Dice: {dice.paired.verdict(a, b)}")
    waiting = [f"{m.label} {m.pending}" for m in summary.models if m.pending]
    if waiting:
        lines.append(f"Nuclei still being split at the thresholds now {PENDING} ({', '.join(waiting)} images)")
    return lines


def summary_lines(session: Session, summary: Summary | None = None) -> list[str]:
    """The summary in words (the footer's tooltip): per model the study's mean per-image Jaccard,
    Dice (mean and pooled), mean AJI, PQ and detection F1, total nuclei; then the two models'
    difference and its verdict."""
    summary = summary or summarize(session)
    lines = []
    for m in summary.models:
        if not m.scored:
            lines.append(f"{m.label} @ {m.threshold:.2f}: no image scored yet")
            continue
        text = f"{m.label} @ {m.threshold:.2f}: {m.scored} scored"
        if m.with_truth:
            text += (f", {m.with_truth} with ground truth: mean Jaccard {_f(m.jaccard_mean)}, "
                     f"Dice mean {_f(m.dice_mean)} / pooled {_f(m.dice_pooled)}, "
                     f"AJI {_f(m.aji_mean)}, PQ {_f(m.pq_mean)}, det. F1 {_f(m.det_f1_mean)}")
            if m.assessed < m.with_truth:
                text += f" (nuclei: {m.assessed} of {m.with_truth})"
        text += f"; nuclei {m.nuclei_pred:,} found"
        if m.nuclei_true:
            text += f", {m.nuclei_true:,} true"
        if m.pending:
            text += f"; {m.pending} still being split {PENDING}"
        lines.append(text)
    for key, name in (("dice", "Dice"), ("aji", "AJI")):
        test = summary.comparisons.get(key)
        if test is None:
            continue
        a, b = session.label(session.model_key), session.label(session.compare_key)
        lines.append(f"{name}, {a} − {b}: mean difference {test.mean_difference:+.3f} over {test.n} images; "
                     f"{test.paired.verdict(a, b)}")
    return lines


# ---------------------------------------------------------------------------- plots


@dataclass(frozen=True)
class Series:
    model: str
    label: str
    x: np.ndarray
    y: np.ndarray
    names: list[str]


def dice_per_image(session: Session) -> list[Series]:
    """Each model's Dice on every scored image with ground truth, at x = the image's place in the list."""
    out = []
    for model in models(session):
        xs, ys, names = [], [], []
        for i, e in enumerate(session.entries):
            c = session.confusion(e, model) if model in e.results else None
            if c is not None:
                xs.append(i + 1)
                ys.append(c.dice)
                names.append(e.name)
        out.append(Series(model, session.label(model), np.array(xs, float), np.array(ys, float), names))
    return out


def _dice_at_every_threshold(counts: list[scoring.LevelCounts]) -> np.ndarray:
    """Pooled Dice over ``counts`` at each grid threshold, from the level counts (no pixel touched)."""
    tp = np.sum([c.truth_above for c in counts], axis=0).astype(float)
    predicted = np.sum([c.above for c in counts], axis=0).astype(float)
    true = float(sum(c.truth_pixels for c in counts))
    den = predicted + true
    return np.divide(2 * tp, den, out=np.ones_like(den), where=den > 0)


def dice_curves(session: Session) -> list[tuple[str, str, Series]]:
    """Dice against threshold, per model: ("image", the current image) and ("folder", pooled over
    every scored image with ground truth)."""
    out = []
    current = session.current()
    thresholds = scoring.GRID.astype(float)
    for model in models(session):
        label = session.label(model)
        if current is not None and current.truth is not None:
            counts = session.counts(current, model)
            if counts is not None:
                out.append(("image", model, Series(model, label, thresholds, _dice_at_every_threshold([counts]),
                                                   [current.name])))
        scored = [e for e in session.entries if model in e.results and e.truth is not None]
        counts = [session.counts(e, model) for e in scored]
        if counts:
            out.append(("folder", model, Series(model, label, thresholds, _dice_at_every_threshold(counts),
                                                [e.name for e in scored])))
    return out


def nucleus_counts(session: Session) -> list[Series]:
    """Per model: true (x) against predicted (y) nuclei on every image with ground truth whose
    nuclei are known at the threshold now."""
    out = []
    for model in models(session):
        xs, ys, names = [], [], []
        for e in session.entries:
            found = session.assessed(e, model)
            if found is not None and found.objects is not None:
                xs.append(found.objects.scores.n_true)
                ys.append(found.nuclei_pred)
                names.append(e.name)
        out.append(Series(model, session.label(model), np.array(xs, float), np.array(ys, float), names))
    return out
