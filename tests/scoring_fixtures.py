"""Helpers for the results, plots and export tests: MoNuSeg sample tiles with their instance maps,
and the task layer's work done in the calling thread."""
from __future__ import annotations

import shutil
from pathlib import Path

from paipviewer.viewer import jobs
from paipviewer.viewer.plan import wanted


def copy_tiles(src: Path, dest: Path, count: int = 4) -> Path:
    """``count`` tiles of ../shared/data/monuseg_sample256 in its layout (images/, masks/, masks_instance/)."""
    names = sorted(p.name for p in (src / "images").glob("*.png"))[:count]
    for sub in ("images", "masks", "masks_instance"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copy(src / sub / name, dest / sub / name)
    return dest


def quiet():
    return {"progress": lambda *_: None, "cancelled": lambda: False}


def run_job(session, cache, job):
    """One planned job, as the task layer runs it off the UI thread, applied to the session."""
    e = session.find(job.image_key)
    if job.kind == "load":
        value = jobs.load_image(e.key, e.path, e.mask_path, **quiet())
    elif job.kind == "run":
        value = jobs.run_on(cache, e.key, job.model_key, e.image, **quiet())
    elif job.kind == "score":
        value = jobs.score(cache, e.key, job.model_key, (e.path, e.mask_path), e.image, **quiet())
    elif job.kind == "objects":
        value = jobs.assess_objects(e.key, job.model_key, e.results[job.model_key], e.truth_labels, job.threshold,
                                    session.object_settings(job.model_key), **quiet())
    else:
        raise AssertionError(f"unexpected job {job}")
    session.apply(value)
    return value


def drive(session, cache, limit: int = 500) -> None:
    """Run what the state wants until it wants nothing (every image scored and its nuclei known)."""
    for _ in range(limit):
        todo = [j for j in wanted(session) if j.kind != "probe"]
        if not todo:
            return
        for job in todo:
            run_job(session, cache, job)
    raise AssertionError("the plan never settled")
