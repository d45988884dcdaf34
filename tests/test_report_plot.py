"""The trade-off figure's labels: variants of one size must not be written over each other."""
from __future__ import annotations

import itertools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from paip_trainer.report import _label_points  # noqa: E402


def test_labels_of_points_on_top_of_each_other_do_not_overlap():
    # ELU-Net 8/4 and 4/5 of grid_18: 159,377 and 163,109 parameters, Jaccard 0.662 and 0.661
    points = [(40377, 0.663, "4/4"), (159377, 0.662, "8/4"), (163109, 0.661, "4/5"), (648201, 0.667, "8/5"),
              (654385, 0.661, "4/6"), (2609089, 0.673, "8/6")]
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    ax.scatter([p[0] for p in points], [p[1] for p in points], marker="s")
    ax.set_xscale("log")
    ax.set_ylim(0.65, 0.94)
    _label_points(ax, points)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = {t.get_text(): t.get_window_extent(renderer) for t in ax.texts}
    assert sorted(texts) == sorted(p[2] for p in points)
    for (a, box_a), (b, box_b) in itertools.combinations(texts.items(), 2):
        assert not box_a.overlaps(box_b), (a, b)
    for x, y, _ in points:  # no label covers a marker's centre
        px, py = ax.transData.transform((x, y))
        assert not any(box.contains(px, py) for box in texts.values())
    plt.close(fig)
