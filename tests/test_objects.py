"""Nuclei as objects: splitting touching nuclei, and the object scores on cases worked by hand."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from paipviewer.core.imageio import read_labels, read_mask
from paipviewer.core.objects import (FALSE, MATCHED, MISSED, ObjectSettings, label_nuclei, match_nuclei,
                                     object_map)


def disc(shape, centre, radius):
    out = np.zeros(shape, np.uint8)
    cv2.circle(out, centre, radius, 1, -1)
    return out.astype(bool)


def test_two_touching_nuclei_are_split_where_they_meet():
    a, b = disc((60, 80), (25, 30), 12), disc((60, 80), (45, 30), 12)  # centres 20 px apart: a neck
    labels = label_nuclei(a | b)
    assert labels.max() == 2
    assert labels[30, 25] != labels[30, 45]  # each centre in its own nucleus
    # the cut runs along the neck, midway between the centres
    left = labels == labels[30, 25]
    assert left[:, :34].sum() > 0.95 * left.sum()
    assert np.array_equal(labels > 0, a | b)  # splitting loses no pixel


def test_a_round_and_an_elongated_nucleus_stay_whole_and_specks_go():
    mask = disc((60, 120), (20, 30), 10)
    ellipse = np.zeros((60, 120), np.uint8)
    cv2.ellipse(ellipse, (80, 30), (25, 8), 0, 0, 360, 1, -1)  # 50 x 16 px: one long nucleus, not two
    mask |= ellipse.astype(bool)
    mask[55:57, 5:7] = True  # a 4 px speck
    labels = label_nuclei(mask)
    assert labels.max() == 2
    assert labels[56, 5] == 0
    assert label_nuclei(mask, ObjectSettings(min_area=1)).max() == 3


def test_labels_are_numbered_in_raster_order():
    mask = np.zeros((20, 20), bool)
    mask[12:18, 2:8] = True
    mask[2:8, 12:18] = True
    labels = label_nuclei(mask, ObjectSettings(min_area=1))
    assert labels[3, 13] == 1 and labels[13, 3] == 2


def squares():
    """Truth: A (4x4, 16 px) and B (4x4). Prediction: A' is A shifted by one column (12 px shared, union
    20: IoU 0.6), B' the left half of B (8 px shared, union 16: IoU 0.5), C a 2x2 false nucleus."""
    truth = np.zeros((20, 20), np.int32)
    truth[0:4, 0:4] = 1
    truth[10:14, 10:14] = 2
    pred = np.zeros((20, 20), np.int32)
    pred[0:4, 1:5] = 7
    pred[10:14, 10:12] = 3
    pred[17:19, 0:2] = 9
    return truth, pred


def test_object_scores_worked_by_hand():
    truth, pred = squares()
    m = match_nuclei(truth, pred)
    s = m.scores
    assert (s.n_true, s.n_pred, s.tp, s.fp, s.fn) == (2, 3, 2, 1, 0)
    assert s.precision == pytest.approx(2 / 3) and s.recall == 1.0
    assert s.f1 == pytest.approx(2 * 2 / (2 * 2 + 1 + 0))  # 0.8
    assert s.sq == pytest.approx((0.6 + 0.5) / 2)
    assert s.pq == pytest.approx(0.8 * 0.55)
    # AJI: C = 12 + 8, U = 20 + 16 + the unused C's 4 pixels
    assert (s.aji_inter, s.aji_union) == (20, 40) and s.aji == pytest.approx(0.5)
    assert m.true_matched[[1, 2]].all() and m.pred_matched[[7, 3]].all() and not m.pred_matched[9]


def test_a_match_needs_iou_of_one_half():
    truth = np.zeros((10, 10), np.int32)
    truth[0:4, 0:4] = 1  # 16 px
    pred = np.zeros((10, 10), np.int32)
    pred[0:4, 0:2] = 1
    pred[0:1, 2:3] = 1   # 9 px inside the truth: IoU 9/16 = 0.5625
    assert match_nuclei(truth, pred).scores.tp == 1
    pred[0:1, 2:3] = 0
    pred[9, 9] = 1       # 8 px inside (IoU 8/17 < 0.5)
    s = match_nuclei(truth, pred).scores
    assert (s.tp, s.fp, s.fn, s.f1, s.pq) == (0, 1, 1, 0.0, 0.0)
    assert s.aji == pytest.approx(8 / 17)  # AJI still credits the overlap


def test_aji_takes_the_best_overlap_and_charges_the_rest():
    """One true nucleus (16 px) cut in two predictions of 10 and 6 px: AJI pairs it with the larger
    (10 shared / 16 union) and adds the smaller's 6 px to the union: 10 / 22. Detection: IoU 10/16
    is a match, the 6 px piece a false positive."""
    truth = np.zeros((8, 8), np.int32)
    truth[0:4, 0:4] = 5
    pred = np.zeros((8, 8), np.int32)
    pred[0:4, 0:4] = 1
    pred[2:4, 1:4] = 2
    s = match_nuclei(truth, pred).scores
    assert (s.aji_inter, s.aji_union) == (10, 22)
    assert (s.tp, s.fp, s.fn) == (1, 1, 0) and s.sq == pytest.approx(10 / 16)


def test_empty_images():
    empty = np.zeros((5, 5), np.int32)
    one = empty.copy()
    one[1:3, 1:3] = 1
    both_empty = match_nuclei(empty, empty).scores
    assert (both_empty.f1, both_empty.aji, both_empty.pq) == (1.0, 1.0, 1.0)
    for truth, pred in ((one, empty), (empty, one)):
        s = match_nuclei(truth, pred).scores
        assert (s.f1, s.aji, s.pq) == (0.0, 0.0, 0.0)


def test_object_map_colours_matched_false_and_missed():
    truth, pred = squares()
    truth[17:19, 10:12] = 4  # a nucleus nobody found
    m = match_nuclei(truth, pred)
    codes = object_map(truth, pred, m)
    assert codes[1, 2] == MATCHED and codes[18, 1] == FALSE and codes[18, 11] == MISSED
    assert codes[10, 13] == 0  # B's right half: its nucleus was matched, so not "missed"


def test_settings_from_a_card_are_checked():
    assert ObjectSettings.from_dict({"min_distance": 6, "other": "x"}).min_distance == 6
    with pytest.raises(ValueError):
        ObjectSettings.from_dict({"min_area": "ten"})
    with pytest.raises(ValueError):
        ObjectSettings.from_dict({"min_distance": 0})


def test_instance_maps_are_read_as_they_are_and_binary_masks_by_components(paip_fixture, samples256):
    instance = next((paip_fixture / "2. PAIP2023_Traning masks" / "tumor").glob("*.png"))
    raw = cv2.imread(str(instance), cv2.IMREAD_UNCHANGED)
    labels = read_labels(instance)
    assert np.array_equal(labels, raw.astype(np.int32)) and len(np.unique(labels)) > 200
    binary = next((samples256 / "masks").glob("*.png"))
    labels = read_labels(binary)
    n, _ = cv2.connectedComponents(read_mask(binary).astype(np.uint8), connectivity=8)
    assert labels.max() == n - 1 and np.array_equal(labels > 0, read_mask(binary))


def test_splitting_recovers_most_real_nuclei_from_their_union(monuseg):
    """MoNuSeg's own instance map, merged to a binary mask and split again: the split finds the
    nuclei that components alone run together (measured: AJI 0.46 by components, 0.89 split)."""
    path = sorted((monuseg / "train" / "masks_instance").glob("*.png"))[0]
    truth = read_labels(path)
    _, components = cv2.connectedComponents((truth > 0).astype(np.uint8), connectivity=8)
    by_components = match_nuclei(truth, components).scores
    split = match_nuclei(truth, label_nuclei(truth > 0)).scores
    assert split.aji > by_components.aji + 0.2
    assert split.f1 > 0.9 and abs(split.n_pred - split.n_true) < 0.1 * split.n_true
