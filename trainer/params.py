"""``paip-train params``: every grid variant's parameter count beside the study's."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from .models import build_model
from .variants import grid_variants

STUDY_TABLE = Path(__file__).resolve().parent / "study_table5.csv"


def study_rows() -> dict[tuple[str, int, int], dict]:
    """The study's Table V keyed by (architecture, filters, depth); empty cells are None."""
    with open(STUDY_TABLE, newline="") as fh:
        return {(r["architecture"], int(r["filters"]), int(r["depth"])): {k: (v or None) for k, v in r.items()}
                for r in csv.DictReader(fh)}


def count_params(architecture: str, filters: int, depth: int) -> int:
    """Parameters of a variant, built at 256x256 and released again (U-Net 128/6 alone is 2 GB)."""
    import keras
    model = build_model(architecture, filters, depth)
    n = int(model.count_params())
    del model
    keras.backend.clear_session()
    return n


def params_csv() -> str:
    study = study_rows()
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["architecture", "filters", "depth", "params", "study_params"])
    for a, f, d in grid_variants():
        w.writerow([a, f, d, count_params(a, f, d), study[(a, f, d)]["params"] or ""])
    return buf.getvalue()
