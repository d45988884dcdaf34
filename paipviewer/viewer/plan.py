"""What should run now, decided from the state alone (so tests check the policy without threads).

The task layer keeps one job per slot: a wanted job already running goes on, anything else in its
slot is cancelled. The current image comes first (read it, run the model and the compare model on
it, then split each model's mask into nuclei at its threshold now and match them with the ground
truth); only when it has everything does background work start: scoring the next unscored image
(when background scoring is on) and the nuclei of the next scored image at the threshold now.
Nothing runs while the user has stopped the viewer.
"""
from __future__ import annotations

from dataclasses import dataclass

from .session import Session

CURRENT_SLOTS = ("load", "primary", "compare", "objects", "objects_compare")  # work on the current image
BACKGROUND_SLOTS = ("background", "objects_background")


@dataclass(frozen=True)
class Job:
    slot: str       # one of CURRENT_SLOTS, BACKGROUND_SLOTS or "probe"
    kind: str       # "load", "run", "score", "objects" or "probe"
    image_key: str
    model_key: str
    threshold: float | None = None  # the nuclei of a mask at this threshold ("objects")
    views: int = 1                  # dihedral views a tile ("run", "score"): a change makes a new job


def wanted(session: Session, current_only: bool = False) -> list[Job]:
    """The jobs to run now (``current_only``: only those of the current image, without looking
    through every open image for background work)."""
    jobs = [Job("probe", "probe", "", session.pending_models[-1])] if session.pending_models else []
    if session.stopped:
        return jobs
    models = [m for m in (session.model_key, session.compare_key) if m and session.usable(m)]
    entry = session.current()
    current = []
    if entry is not None and entry.error is None:
        if not entry.loaded:
            current.append(Job("load", "load", entry.key, ""))
        else:
            for slot, model in (("primary", session.model_key), ("compare", session.compare_key)):
                if (model and session.usable(model) and model not in entry.results
                        and model not in entry.failures):
                    current.append(Job(slot, "run", entry.key, model, views=session.views))
            for slot, model in (("objects", session.model_key), ("objects_compare", session.compare_key)):
                if model and session.wants_assessment(entry, model):
                    current.append(Job(slot, "objects", entry.key, model, session.threshold(model)))
    if current or current_only:
        return jobs + current
    start = max(session.index_of(session.current_key), 0)
    if session.background:
        for model in models:
            nxt = session.next_unscored(model, after=start)
            if nxt is not None:
                jobs.append(Job("background", "score", nxt.key, model, views=session.views))
                break
    # The nuclei of images already scored follow the threshold, as their pixel scores do.
    for model in models:
        nxt = session.next_unassessed(model, after=start)
        if nxt is not None:
            jobs.append(Job("objects_background", "objects", nxt.key, model, session.threshold(model)))
            break
    return jobs
