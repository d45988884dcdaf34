"""``paip-train table5``: evaluated variants keep their rows, the rest are measured untrained and never scored."""
from __future__ import annotations

import csv

import pytest

from paip_trainer.cli import main as cli
from paip_trainer.params import count_params
from paip_trainer.table5 import NOT_TRAINED, table5


def _rows(path):
    with open(path, newline="") as fh:
        return {r["variant"]: r for r in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def evaluated(paip_fixture, paip_prepared, tiny_model_file, tmp_path_factory):
    _, cache = paip_prepared
    out = tmp_path_factory.mktemp("eval")
    assert cli(["evaluate", "--data", str(paip_fixture), "--cache", str(cache), "--models", str(tiny_model_file),
                "--out", str(out), "--runs", "1", "--tiles", "5"]) == 0
    return out / "results.csv", cache


def test_table5_keeps_evaluated_rows_and_measures_the_others_without_scoring_them(paip_fixture, evaluated, tmp_path):
    results, cache = evaluated
    from paip_trainer.prepare import PrepareSettings

    out = tmp_path / "t5"
    rows = table5([results], paip_fixture, out, PrepareSettings(),
                  variants=[("elunet", 4, 4), ("unet", 4, 3)], tiles=5, log=lambda *_: None)
    assert [r["variant"] for r in rows] == ["elunet_4_4", "unet_4_3"]
    written = _rows(out / "table5.csv")
    with open(results, newline="") as fh:
        evaluated_row = next(csv.DictReader(fh))
    trained = written["elunet_4_4"]
    assert trained["status"] == "trained" and trained["jaccard_57"] == evaluated_row["jaccard_57"]
    assert trained["study_jaccard"] == "0.867" and trained["study_params"] == "52053"
    # The work a tile costs: convolutions only, the same for a trained and an untrained model of a variant.
    from paip_trainer.flops import conv_gflop
    from paip_trainer.models import build_model
    assert float(trained["gflop_tile"]) == pytest.approx(conv_gflop(build_model("elunet", 4, 4)), rel=1e-3)
    other = written["unet_4_3"]
    # both rows are timed in this run and set against the one GEMM rate it measured
    assert float(trained["gemm_gflops"]) > 1 and trained["gemm_gflops"] == other["gemm_gflops"]
    for row in (trained, other):
        share = float(row["gflops"]) / float(row["gemm_gflops"])
        assert float(row["total57_s"]) > 0 and float(row["of_gemm"]) == pytest.approx(share, rel=1e-3)
    assert other["status"] == NOT_TRAINED
    assert int(other["params"]) == count_params("unet", 4, 3)
    assert float(other["file_mb"]) > 0 and float(other["file_mb_with_optimizer"]) > 1.5 * float(other["file_mb"])
    assert float(other["total57_s"]) > 0 and float(other["gflop_tile"]) > 0 and 0 < float(other["of_gemm"]) < 2
    assert other["jaccard_57"] == other["dice_image"] == other["aji"] == other["epochs"] == ""
    table = (out / "table5.md").read_text()
    assert NOT_TRAINED in table and "paip-train grid --only unet_4_3" in table
    assert (out / "tradeoff.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.iterdir() if p.name.startswith("table5-")] == []  # the untrained files are gone


def test_table5_cli_lists_all_18_variants_in_table_v_order_and_keeps_an_earlier_table(paip_fixture, evaluated,
                                                                                      tmp_path, capsys):
    results, cache = evaluated
    out = tmp_path / "t5"
    args = ["table5", "--data", str(paip_fixture), "--cache", str(cache), "--results", str(results),
            "--out", str(out), "--no-measure"]
    assert cli(args) == 0
    rows = _rows(out / "table5.csv")
    assert list(rows)[:3] == ["unet_32_4", "unet_32_5", "unet_32_6"] and len(rows) == 18
    assert [v for v, r in rows.items() if r["status"] == "trained"] == ["elunet_4_4"]
    assert rows["unet_128_6"]["study_note"] == "could not be built" and rows["unet_128_6"]["params"] == ""
    before = (out / "table5.md").read_bytes()
    assert cli(args) == 2  # nothing is overwritten without --overwrite
    assert "--overwrite" in capsys.readouterr().err and (out / "table5.md").read_bytes() == before


def test_table5_leaves_out_rows_scored_with_test_time_augmentation(evaluated, tmp_path):
    from paip_trainer.table5 import read_results

    results, _ = evaluated
    rows = list(csv.DictReader(open(results)))
    assert rows[0]["views"] == "1"
    augmented = tmp_path / "results.csv"
    with open(augmented, "w", newline="") as fh:
        writer = csv.DictWriter(fh, list(rows[0]))
        writer.writeheader()
        writer.writerows({**r, "views": "8", "dice_image": "0.9999"} for r in rows)
    assert read_results([augmented]) == {}
    (row,) = read_results([augmented, results]).values()
    assert row["source"] == str(results) and row["dice_image"] == rows[0]["dice_image"]


def test_a_trained_row_is_timed_in_this_run_not_taken_from_its_evaluate_run(paip_fixture, evaluated, tmp_path):
    """An evaluate run may have been on another CPU: its time is replaced, and kept (without a share)
    only when the table measures nothing."""
    results, _ = evaluated
    from paip_trainer.prepare import PrepareSettings

    with open(results, newline="") as fh:
        rows = list(csv.DictReader(fh))
    elsewhere = tmp_path / "results.csv"  # as a slow CPU timed it, with a slow GEMM
    with open(elsewhere, "w", newline="") as fh:
        w = csv.DictWriter(fh, list(rows[0]))
        w.writeheader()
        w.writerows({**r, "load_s": "1.0", "predict57_s": "999.0", "total57_s": "1000.0", "gemm_gflops": "1.0"}
                    for r in rows)
    for measure in (True, False):
        out = tmp_path / f"t5_{measure}"
        table5([elsewhere], paip_fixture, out, PrepareSettings(), variants=[("elunet", 4, 4)], tiles=5,
               measure=measure, log=lambda *_: None)
        row = _rows(out / "table5.csv")["elunet_4_4"]
        assert row["status"] == "trained" and row["jaccard_57"] == rows[0]["jaccard_57"]
        if measure:
            assert float(row["total57_s"]) < 100 and float(row["gemm_gflops"]) > 1 and float(row["of_gemm"]) < 2
        else:
            assert row["total57_s"] == "1000.0" and row["of_gemm"] == row["gemm_gflops"] == row["gflop_tile"] == ""
