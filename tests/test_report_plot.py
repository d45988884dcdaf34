"""The trade-off figure's labels: variants of one size or speed must not be written over each other,
nor beside a marker that is not theirs, nor outside the axes."""
from __future__ import annotations

import itertools

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from paip_trainer.report import _gap, _label_points  # noqa: E402

# grid_18's trained rows: (parameters, Jaccard 57, label) and (seconds for load + 57 tiles, Jaccard 57, label)
BY_SIZE = [(40377, 0.663, "4/4"), (159377, 0.662, "8/4"), (163109, 0.661, "4/5"), (648201, 0.667, "8/5"),
           (654385, 0.661, "4/6"), (2609089, 0.673, "8/6"), (633249, 0.663, "16/4"), (7760645, 0.656, "32/5")]
BY_TIME = [(1.63, 0.663, "4/4"), (2.28, 0.662, "8/4"), (2.58, 0.661, "4/5"), (3.22, 0.667, "8/5"),
           (4.14, 0.661, "4/6"), (4.81, 0.673, "8/6"), (4.66, 0.663, "16/4"), (7.64, 0.656, "32/5")]


@pytest.mark.parametrize("points", [BY_SIZE, BY_TIME], ids=["size", "time"])
def test_labels_are_apart_inside_the_axes_and_beside_their_own_marker(points):
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    ax.scatter([p[0] for p in points], [p[1] for p in points], marker="s")
    ax.set_xscale("log")
    ax.set_ylim(0.62, 0.94)
    _label_points(ax, points)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = {t.get_text(): (t.get_window_extent(renderer), t.arrow_patch is not None) for t in ax.texts}
    assert sorted(texts) == sorted(p[2] for p in points)
    for (a, (box_a, _)), (b, (box_b, _)) in itertools.combinations(texts.items(), 2):
        assert not box_a.overlaps(box_b), (a, b)
    frame = ax.get_window_extent(renderer)
    markers = {text: tuple(ax.transData.transform((x, y))) for x, y, text in points}
    for text, (box, lined) in texts.items():
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, text
        assert not any(box.contains(*m) for m in markers.values()), text  # no label covers a marker
        if not lined:  # a label without a line to its marker is nearer that marker than any other
            extent = (box.x0, box.y0, box.x1, box.y1)
            own = _gap(extent, markers[text])
            assert all(own <= _gap(extent, m) for t, m in markers.items() if t != text), text
    plt.close(fig)
