"""The words and numbers the views show, from the state: one place, so no two views disagree.

Qt-free: list rows, view titles, the metrics table, the status line, the summary line.
"""
from __future__ import annotations

from .images import ImageEntry
from .session import Session

NO_TRUTH = "no ground truth"


def truth_note(entry: ImageEntry) -> str:
    """Why an image has no ground truth in use, or ""."""
    if entry.mask_error:
        return f"ground truth not used: {entry.mask_error.removeprefix((entry.mask_path.name if entry.mask_path else '') + ': ')}"
    if entry.loaded and entry.truth is None:
        return NO_TRUTH
    return ""


def score_text(session: Session, entry: ImageEntry, model: str) -> str:
    """One model's figure on one image, named: "ELU-Net 8/5: J 0.676 D 0.807", or its nuclear area."""
    label = session.label(model)
    if model in entry.failures:
        return f"{label}: failed"
    if model not in entry.results:
        return ""
    c = session.confusion(entry, model)
    if c is not None:
        return f"{label}: J {c.jaccard:.3f} D {c.dice:.3f}"
    # The nuclear area, not the nucleus count: it comes from the level counts in O(1), so every row
    # can follow the threshold; counting nuclei takes a pass over the pixels (the metrics panel does).
    return f"{label}: nuclei on {100 * session.predicted_pixels(entry, model) / entry.results[model].levels.size:.1f}% of area"


def row_lines(session: Session, entry: ImageEntry) -> list[str]:
    """The image list's row: the name, then each model's figure, then what is wrong."""
    if entry.error:
        return [entry.name, entry.error]
    lines = [entry.name]
    lines += [t for t in (score_text(session, entry, m) for m in (session.model_key, session.compare_key) if m) if t]
    note = truth_note(entry)
    if note:
        lines.append(note)
    return lines


def row_tooltip(entry: ImageEntry) -> str:
    if entry.error:
        return f"{entry.path}\n{entry.error}"
    if entry.mask_error:
        return f"{entry.path}\nground truth {entry.mask_path} is not used: {entry.mask_error}"
    if entry.truth is not None:
        return f"{entry.path}\nground truth: {entry.mask_path}"
    if entry.mask_path is not None and not entry.loaded:
        return f"{entry.path}\nground truth (not read yet): {entry.mask_path}"
    return f"{entry.path}\nno ground truth"


def view_title(session: Session, entry: ImageEntry | None, model: str, side_by_side: bool, sep: str = " — ") -> str:
    """A view's title: its model, its own threshold, and its scores on this image (without ground
    truth: its nucleus count once known, its nuclear area until then)."""
    label = session.label(model) or "no model"
    parts = [f"{label} @ {session.threshold(model):.2f}" if model else label]
    if entry is not None and not side_by_side:
        parts.append(entry.name)
    if entry is not None and model in entry.results:
        c = session.confusion(entry, model)
        if c is not None:
            parts.append(f"Jaccard {c.jaccard:.3f}, Dice {c.dice:.3f}")
        elif session.nuclei_known(entry, model):
            parts.append(f"{session.nuclei(entry, model):,} nuclei")
        else:
            parts.append(f"nuclei on {100 * session.predicted_pixels(entry, model) / entry.results[model].levels.size:.1f}%"
                         " of area")
    return sep.join(parts)


METRIC_ROWS = (("Jaccard", "jaccard"), ("Dice", "dice"), ("Precision", "precision"), ("Recall", "recall"),
               ("TP pixels", "tp"), ("FP pixels", "fp"), ("FN pixels", "fn"),
               ("Nuclei / true", "nuclei"), ("Detection F1", "det_f1"),
               ("AJI", "aji"), ("PQ", "pq"), ("Nuclear area", "area"),
               ("Load (s)", "model_load"), ("Inference (s)", "inference"), ("Total (s)", "total"),
               ("Runs on", "runtime"), ("Pixel size", "pixel_size"), ("Magnification", "scale"))


PENDING = "…"  # a figure being computed off the UI thread


def metric_column(session: Session, entry: ImageEntry | None, model: str) -> dict[str, str]:
    """The metrics table's column for one model on the current image: row key -> text. The nuclei
    and their scores (split and matched off the UI thread) read "…" until they are known at the
    model's threshold now."""
    if entry is None or not model:
        return {}
    if model in entry.failures:
        return {"jaccard": "failed"}
    result = entry.results.get(model)
    if result is None:
        return {"jaccard": "" if entry.error else "stopped" if session.stopped else "running…"}
    out = {}
    c = session.confusion(entry, model)
    if c is not None:
        values = c.as_dict()
        for key in ("jaccard", "dice", "precision", "recall"):
            out[key] = f"{values[key]:.3f}"
        for key in ("tp", "fp", "fn"):
            out[key] = f"{values[key]:,}"
    else:
        out["jaccard"] = truth_note(entry) or NO_TRUTH
    pixels = session.predicted_pixels(entry, model)
    cells = object_cells(session, entry, model)
    if "nuclei_true" in cells:  # one row, so the panel fits a laptop's height
        cells["nuclei"] = f"{cells['nuclei']} / {cells.pop('nuclei_true')}"
    out.update(cells)
    out["area"] = f"{100 * pixels / result.levels.size:.1f}% ({pixels:,} px)"
    for key, value in result.prediction.timing.items():
        out[key] = f"{value:.2f}"
    views = result.prediction.views
    out["runtime"] = result.runtime + (f", {views} views" if views > 1 else "")
    out["pixel_size"] = session.pixel_size(entry).text().replace("um/px", "µm/px")
    out["scale"] = scale_text(result.scale)
    return out


def scale_text(scale) -> str:
    """How the image met the model's pixel size, in the few words a metrics cell holds."""
    if scale is None or scale.model_mpp is None:
        return "as is"
    if scale.image.mpp is None:
        return "as is"  # the pixel size row says "unknown"
    if scale.resampled:
        return f"×{scale.factor:.3g} to {scale.model_mpp:g} µm/px"
    return "as is (handling off)" if not scale.enabled else "at the model's"


def object_cells(session: Session, entry: ImageEntry, model: str) -> dict[str, str]:
    """Nuclei predicted and true, detection F1, AJI and PQ as text; "…" while computed, blank
    where there is no ground truth."""
    truth = entry.truth_labels is not None
    found = session.assessed(entry, model)
    if found is None:
        failed = session.assessment_failed(entry, model)
        out = {"nuclei": "failed" if failed else PENDING}
        if truth and not failed:
            out.update(nuclei_true=f"{session.truth_count(entry):,}", det_f1=out["nuclei"], aji=out["nuclei"],
                       pq=out["nuclei"])
        return out
    out = {"nuclei": f"{found.nuclei_pred:,}"}
    if found.objects is not None:
        o = found.objects.scores
        out.update(nuclei_true=f"{o.n_true:,}", det_f1=f"{o.f1:.3f}", aji=f"{o.aji:.3f}", pq=f"{o.pq:.3f}")
    return out


def summary_lines(session: Session) -> list[str]:
    """Over all open images, per model: the study's mean per-tile Jaccard and the pooled scores,
    or, without ground truth, how many images are scored."""
    lines = []
    usable = session.usable_images()
    for model in (session.model_key, session.compare_key):
        if not model or not session.label(model):
            continue
        s = session.summary(model)
        scored = session.scored(model)
        if s is not None:
            # Only scored images with ground truth count: "of" says how many are open.
            of = f"{s['count']} images" if s["count"] == usable else f"{s['count']} of {usable} images"
            lines.append(f"{session.label(model)} @ {session.threshold(model):.2f}: mean per-tile Jaccard "
                         f"{s['jaccard_mean']:.3f} on {of} (pooled {s['jaccard_pooled']:.3f}, "
                         f"mean Dice {s['dice_mean']:.3f})")
        else:
            lines.append(f"{session.label(model)}: {scored}/{usable} images scored, none with ground truth")
    return lines


def status_text(session: Session, running: list) -> str:
    """What the viewer is doing now, from the jobs that run."""
    if session.stopped:
        return "Stopped. Select an image (or press R) to run again."
    names = {"load": "Reading", "primary": "Running", "compare": "Running", "probe": "Loading model",
             "objects": "Finding the nuclei of", "objects_compare": "Finding the nuclei of"}
    current = [j for j in running if j.slot in names]
    if current:
        parts = []
        for job in current:
            what = session.label(job.model_key) or (job.model_key.rsplit("/", 1)[-1] if job.model_key else "")
            entry = session.find(job.image_key)
            parts.append(" ".join(p for p in (names[job.slot], what, f"on {entry.name}" if entry else "") if p))
        return "; ".join(parts) + "…"
    background = [j for j in running if j.slot == "background"]
    if background:
        model = background[0].model_key
        return f"Scoring all images with {session.label(model)}: {session.scored(model)}/{session.usable_images()}"
    objects = [j for j in running if j.slot == "objects_background"]
    if objects:
        model = objects[0].model_key
        known = sum(1 for e in session.entries if session.nuclei_known(e, model))
        return (f"Finding the nuclei of {session.label(model)} at {session.threshold(model):.2f}: "
                f"{known}/{session.scored(model)}")
    return "Ready"
