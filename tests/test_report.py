"""The offline report: one HTML page with every metric, chart and sound inline, and notes for what is missing."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from matplotlib.figure import Figure

from audiomnist_denoise.errors import PipelineError
from audiomnist_denoise.reporting.report import ReportInputs, build_report, write_report

REPO = Path(__file__).resolve().parents[1]
GROUPS = {"digit": ["0", "1"], "speaker": ["07", "12"], "gender": ["female", "male"]}
CLIPS = ["0_07_1", "1_12_0"]
SOURCES = ("clean", "noisy", "denoised")
# A script, stylesheet, image or sound from elsewhere: an http(s) or protocol-relative src, href or CSS url().
EXTERNAL_REFERENCE = re.compile(r"""(?:(?:src|href)\s*=|url\()\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def _write_inputs(root: Path) -> ReportInputs:
    """Small stand-ins for every pipeline output the report reads, under `root`."""
    (root / "metrics").mkdir(parents=True)
    (root / "metrics/eval.json").write_text(
        json.dumps({"test.mse": 0.0123, "test.mse_ratio": 0.4321, "test.clips": 20})
    )
    (root / "metrics/train.json").write_text(json.dumps({"train": {"loss": 0.0456}, "val": {"best_loss": 0.0789}}))
    curves = {}
    for split, steps in (("train", range(1, 11)), ("val", range(5, 11, 5))):
        curves[split] = root / f"curves/{split}/loss.tsv"
        curves[split].parent.mkdir(parents=True)
        curves[split].write_text("step\tloss\n" + "".join(f"{step}\t{1 / step}\n" for step in steps))
    tables = {}
    for by, groups in GROUPS.items():
        tables[by] = root / f"eval/by_{by}.csv"
        tables[by].parent.mkdir(exist_ok=True)
        rows = "".join(f"{group},0.0{i + 1},0.0{i + 5},10\n" for i, group in enumerate(groups))
        tables[by].write_text(f"{by},mse,identity_mse,clips\n{rows}")
    (root / "figures").mkdir()
    (root / "audio").mkdir()
    for clip in CLIPS:
        figure = Figure(figsize=(2, 1))
        figure.add_subplot().plot([0, 1], [1, 0])
        figure.savefig(root / f"figures/{clip}.png")
        for source in SOURCES:
            sf.write(root / f"audio/{clip}_{source}.wav", np.zeros(160, np.float32), 16000, subtype="FLOAT")
    return ReportInputs(
        metrics={"Evaluation": root / "metrics/eval.json", "Training": root / "metrics/train.json"},
        loss_curves=curves,
        group_tables=tables,
        sample_figures=root / "figures",
        sample_audio=root / "audio",
    )


@pytest.fixture
def inputs(tmp_path: Path) -> ReportInputs:
    return _write_inputs(tmp_path / "outputs")


def test_the_page_holds_the_metrics_charts_and_sounds_inline(inputs, tmp_path):
    output = tmp_path / "report/index.html"
    write_report(inputs, output)
    page = output.read_text()
    for value in ("0.0123", "0.4321", "20", "0.0456", "0.0789", "train.loss", "val.best_loss"):
        assert f">{value}<" in page  # a table cell of its own
    charts = 1 + len(GROUPS) + len(CLIPS)  # the loss curves, a bar chart per group table, a figure per sample
    assert page.count('<img src="data:image/png;base64,') == charts
    assert page.count('<audio controls preload="metadata" src="data:audio/wav;base64,') == len(CLIPS) * len(SOURCES)
    assert 'class="missing"' not in page
    assert EXTERNAL_REFERENCE.search('<script src="https://cdn.example/vega.js">')  # the check can fail
    assert not EXTERNAL_REFERENCE.search(page)
    assert not list(output.parent.glob(".*partial"))


def test_a_missing_input_is_a_note_on_the_page(inputs):
    inputs.metrics["Evaluation"].unlink()
    inputs.metrics["Training"].write_text('{"train": {"lo')  # caught halfway through a rewrite
    inputs.loss_curves["val"].unlink()
    inputs.group_tables["speaker"].write_text("speaker,mse\n07,0.1\n")  # no identity_mse column
    (inputs.sample_audio / f"{CLIPS[0]}_denoised.wav").unlink()
    page = build_report(inputs)
    assert page.count('class="missing"') == 5
    assert f"{inputs.metrics['Evaluation']} not found" in page
    assert f"{inputs.metrics['Training']} could not be read (JSONDecodeError)" in page
    assert f"{inputs.loss_curves['val']} not found" in page
    assert "has no column identity_mse, clips" in page
    assert f"{CLIPS[0]}_denoised.wav not found" in page
    assert page.count("data:image/png;base64,") == 1 + len(GROUPS) - 1 + len(CLIPS)  # train curve still drawn


def test_no_input_at_all_is_an_error(inputs, tmp_path):
    empty = ReportInputs(
        metrics={"Evaluation": tmp_path / "nowhere.json"},
        loss_curves={},
        group_tables={},
        sample_figures=tmp_path / "no-figures",
        sample_audio=tmp_path / "no-audio",
    )
    with pytest.raises(PipelineError, match="no pipeline outputs to report"):
        write_report(empty, tmp_path / "index.html")
    assert not (tmp_path / "index.html").exists()


def test_the_script_fails_in_one_line_where_nothing_was_built(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts/report.py")], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: no pipeline outputs to report")
    assert result.stderr.count("\n") == 1
