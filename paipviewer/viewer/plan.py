"""What should run now, decided from the state alone (so tests check the policy without threads).

The task layer keeps one job per slot: a wanted job already running goes on, anything else in its
slot is cancelled. The current image comes first (read it, then run the model and the compare
model on it); only when it has everything does background scoring take the next unscored image.
Nothing runs while the user has stopped the viewer.
"""
from __future__ import annotations

from dataclasses import dataclass

from .session import Session

CURRENT_SLOTS = ("load", "primary", "compare")  # work on the current image


@dataclass(frozen=True)
class Job:
    slot: str       # "load", "primary", "compare", "background" or "probe"
    kind: str       # "load", "run", "score" or "probe"
    image_key: str
    model_key: str


def wanted(session: Session) -> list[Job]:
    jobs = [Job("probe", "probe", "", session.pending_models[-1])] if session.pending_models else []
    if session.stopped:
        return jobs
    entry = session.current()
    current = []
    if entry is not None and entry.error is None:
        if not entry.loaded:
            current.append(Job("load", "load", entry.key, ""))
        else:
            for slot, model in (("primary", session.model_key), ("compare", session.compare_key)):
                if (model and session.usable(model) and model not in entry.results
                        and model not in entry.failures):
                    current.append(Job(slot, "run", entry.key, model))
    if current or not session.background:
        return jobs + current
    start = max(session.index_of(session.current_key), 0)
    for model in (session.model_key, session.compare_key):
        if model and session.usable(model):
            nxt = session.next_unscored(model, after=start)
            if nxt is not None:
                return jobs + [Job("background", "score", nxt.key, model)]
    return jobs
