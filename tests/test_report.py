"""The offline report: one HTML page with every metric, chart and sound inline, and notes for what is missing."""

import dataclasses
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml
from conftest import new_unet
from matplotlib.figure import Figure

from audiomnist_denoise.errors import PipelineError
from audiomnist_denoise.model.checkpoint import save_checkpoint
from audiomnist_denoise.names import QUALITY
from audiomnist_denoise.reporting.report import (
    ReportInputs,
    build_report,
    conditions_figure,
    loss_curve_figure,
    training_loss,
    write_report,
)

REPO = Path(__file__).resolve().parents[1]
GROUPS = {"digit": ["0", "1"], "speaker": ["07", "12"], "gender": ["female", "male"]}
CLIPS = ["0_07_1", "1_12_0"]
SOURCES = ("clean", "noisy", "unet_mask", "oracle_mask")
SWEEP_METHODS = ["noisy", "unet_mask", "oracle_mask"]
SWEEP_KINDS = ("white", "babble")
KINDS = ("white", "pink", "brown", "babble", "mean")
HARM = ["test speakers, babble -8 dB: unet_mask STOI 0.515 < noisy 0.524", "natural voices, pink -8 dB: unet_mask x"]
# A script, stylesheet, image or sound from elsewhere: an http(s) or protocol-relative src, href or CSS url().
EXTERNAL_REFERENCE = re.compile(r"""(?:(?:src|href)\s*=|url\()\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def _write_inputs(root: Path) -> ReportInputs:
    """Small stand-ins for every pipeline output the report reads, under `root`."""
    (root / "metrics").mkdir(parents=True)
    quality = {  # the ceiling scores best, and unet_mask is the best method on all but ESTOI
        "noisy": {"si_sdr": -8.0, "pesq": 1.03, "stoi": 0.739, "estoi": 0.478},
        "unet_mask": {"si_sdr": 7.5432, "pesq": 1.4567, "stoi": 0.7961, "estoi": 0.47},
        "oracle_mask": {"si_sdr": 9.8765, "pesq": 2.9512, "stoi": 0.961, "estoi": 0.9},
    }
    (root / "metrics/eval.json").write_text(
        json.dumps({"test": {"mse": 0.0123, "mse_ratio": 0.4321, "clips": 20} | quality, "harm": HARM})
    )
    conditions = {
        "snr_db": -8.0,
        "test": {kind: quality for kind in KINDS},
        "natural": {kind: quality for kind in KINDS},
        "harm": HARM[:1],
    }
    (root / "metrics/conditions.json").write_text(json.dumps(conditions))
    sweep = {}
    for kind in SWEEP_KINDS:
        sweep[kind] = {metric: root / f"sweep/{kind}/{metric}.csv" for metric in QUALITY}
        for path in sweep[kind].values():
            path.parent.mkdir(parents=True, exist_ok=True)
            rows = "".join(f"{snr},{snr / 10},{snr / 5},{snr}\n" for snr in (5, -5, 0))  # unsorted
            path.write_text(f"snr_db,{','.join(SWEEP_METHODS)}\n{rows}")
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
        quality=root / "metrics/eval.json",
        conditions=root / "metrics/conditions.json",
        sweep=sweep,
        metrics={"Evaluation": root / "metrics/eval.json", "Training": root / "metrics/train.json"},
        loss_curves=curves,
        group_tables=tables,
        sample_figures=root / "figures",
        sample_audio=root / "audio",
        sample_sources=SOURCES,
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
    # the loss curves, a chart per set of clips, a chart per sweep kind and metric, a bar chart per group table,
    # a figure per sample
    charts = 1 + 2 + len(SWEEP_KINDS) * len(QUALITY) + len(GROUPS) + len(CLIPS)
    assert page.count('<img src="data:image/png;base64,') == charts
    assert page.count('<audio controls preload="metadata" src="data:audio/wav;base64,') == len(CLIPS) * len(SOURCES)
    assert 'class="missing"' not in page
    assert EXTERNAL_REFERENCE.search('<script src="https://cdn.example/vega.js">')  # the check can fail
    assert not EXTERNAL_REFERENCE.search(page)
    assert not list(output.parent.glob(".*partial"))


def test_a_missing_input_is_a_note_on_the_page(inputs):
    inputs.metrics["Evaluation"].unlink()  # also the speech-quality table's input
    inputs.metrics["Training"].write_text('{"train": {"lo')  # caught halfway through a rewrite
    inputs.sweep["babble"]["pesq"].unlink()
    inputs.loss_curves["val"].unlink()
    inputs.group_tables["speaker"].write_text("speaker,mse\n07,0.1\n")  # no identity_mse column
    (inputs.sample_audio / f"{CLIPS[0]}_unet_mask.wav").unlink()
    page = build_report(inputs)
    assert page.count('class="missing"') == 8
    assert page.count(f"{inputs.metrics['Evaluation']} not found") == 3  # with the no-harm list
    assert f"{inputs.sweep['babble']['pesq']} not found" in page
    assert f"{inputs.metrics['Training']} could not be read (JSONDecodeError)" in page
    assert f"{inputs.loss_curves['val']} not found" in page
    assert "has no column identity_mse, clips" in page
    assert f"{CLIPS[0]}_unet_mask.wav not found" in page
    charts = 1 + 2 + len(SWEEP_KINDS) * len(QUALITY) - 1 + len(GROUPS) - 1 + len(CLIPS)  # the train curve still
    assert page.count("data:image/png;base64,") == charts


def test_no_input_at_all_is_an_error(inputs, tmp_path):
    empty = ReportInputs(
        quality=tmp_path / "nowhere.json",
        conditions=tmp_path / "no-conditions.json",
        sweep={"white": {"stoi": tmp_path / "no-sweep.csv"}},
        metrics={"Evaluation": tmp_path / "nowhere.json"},
        loss_curves={},
        group_tables={},
        sample_figures=tmp_path / "no-figures",
        sample_audio=tmp_path / "no-audio",
        sample_sources=SOURCES,
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


def test_the_page_opens_with_the_methods_table_then_the_conditions_the_sweep_and_the_samples(inputs):
    page = build_report(inputs)
    order = [
        "Speech quality per method",
        "Speech quality under each noise kind",
        "Speech quality against SNR",
        "<h2>Samples",
        "Loss curves",
        "All metrics",
    ]
    positions = [page.index(heading) for heading in order]
    assert positions == sorted(positions)
    table = page[positions[0] : positions[1]]
    assert table.count("<tr") == 1 + 3  # header, then noisy, unet_mask and the ceiling
    assert table.index("<code>noisy</code>") < table.index("<code>unet_mask</code>") < table.index("oracle_mask")
    for value in ("7.54", "1.457", "0.796"):  # unet_mask's best scores, each to its metric's precision
        assert f'<td class="number best">{value}</td>' in table
    assert '<td class="number best">0.478</td>' in table  # ESTOI: noisy beats unet_mask
    assert '<tr class="ceiling">' in table and '<td class="number">9.88</td>' in table  # not marked best


def _section(page: str, heading: str, following: str) -> str:
    return page[page.index(heading) : page.index(following)]


def test_each_set_of_clips_is_charted_and_the_no_harm_list_is_said(inputs):
    section = _section(build_report(inputs), "Speech quality under each noise kind", "Speech quality against SNR")
    assert section.index("<h3>Test speakers</h3><img") < section.index("<h3>Natural voices</h3><img")
    assert 'alt="Each method under each noise kind at -8 dB, natural voices"' in section
    harm = section[section.index("Where the default method is below the noisy input") :]
    assert "The default method (<code>unet_mask</code>) is below the noisy input's STOI or PESQ in:" in harm
    assert "".join(f"<li>{item.replace('<', '&lt;')}</li>" for item in HARM) in harm
    sweep = _section(build_report(inputs), "Speech quality against SNR", "<h2>Samples")
    assert [sweep.index(f"<h3>{kind.capitalize()} noise</h3>") for kind in SWEEP_KINDS] == sorted(
        sweep.index(f"<h3>{kind.capitalize()} noise</h3>") for kind in SWEEP_KINDS
    )
    assert 'alt="stoi against SNR, babble noise"' in sweep


def test_no_harm_and_a_set_not_scored_are_said_too(inputs):
    metrics = json.loads(inputs.quality.read_text())
    inputs.quality.write_text(json.dumps(metrics | {"harm": []}))
    conditions = json.loads(inputs.conditions.read_text())
    del conditions["natural"]  # a run from before the natural voices
    inputs.conditions.write_text(json.dumps(conditions))
    page = build_report(inputs)
    section = _section(page, "Speech quality under each noise kind", "Speech quality against SNR")
    assert section.count("<img") == 1 and section.count('class="missing"') == 1
    assert f"{inputs.conditions} has no natural voices (natural)" in section
    assert "is at or above the noisy input's STOI and PESQ in every condition, to the 3 decimals shown." in section
    del metrics["harm"]
    inputs.quality.write_text(json.dumps(metrics))
    inputs.conditions.unlink()
    section = _section(build_report(inputs), "Speech quality under each noise kind", "Speech quality against SNR")
    assert section.count('class="missing"') == 2 and "<img" not in section
    assert f"{inputs.conditions} not found" in section and f"{inputs.quality} has no no-harm list (harm)" in section


def test_the_conditions_chart_has_a_bar_per_method_and_kind_in_each_metrics_panel(inputs):
    values = json.loads(inputs.conditions.read_text())["test"]
    rows = {(kind, method): scores for kind, methods in values.items() for method, scores in methods.items()}
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis(["kind", "method"])
    figure = conditions_figure(table, "title")
    assert [panel.get_title() for panel in figure.axes] == [name for name, _ in QUALITY.values()]
    stoi = figure.axes[list(QUALITY).index("stoi")]
    assert [label.get_text() for label in stoi.get_xticklabels()] == [*KINDS[:-1], "mean of\nthe kinds"]
    bars = {container.get_label(): container for container in stoi.containers}
    assert list(bars) == SWEEP_METHODS
    assert [bar.get_height() for bar in bars["unet_mask"]] == [0.7961] * len(KINDS)
    assert all(bar.get_hatch() == "//" for bar in bars["oracle_mask"]) and not bars["noisy"][0].get_hatch()


def test_a_list_of_metrics_shows_an_item_a_line(inputs):
    page = build_report(inputs)
    table = page[page.index("All metrics") :]
    assert "<th>harm</th><td>" + "<br>".join(item.replace("<", "&lt;") for item in HARM) + "</td>" in table


def test_each_sample_plays_every_source_in_order(inputs):
    page = build_report(inputs)
    samples = page[page.index("<h2>Samples") : page.index("Loss curves")]
    for clip in CLIPS:
        block = samples[samples.index(f"<h3>{clip}</h3>") :]
        positions = [block.index(f"<div>{source}<audio") for source in SOURCES]
        assert positions == sorted(positions)


def _curves(train: list[float], val: list[float]) -> dict[str, pd.DataFrame]:
    return {
        "train": pd.DataFrame({"step": range(1, len(train) + 1), "loss": train}),
        "val": pd.DataFrame({"step": range(2, 2 * len(val) + 1, 2), "loss": val}),
    }


def test_the_loss_chart_names_its_loss_and_draws_the_values_below_zero():
    # compressed_si_sdr: the SI-SDR term takes the training loss below zero; validation leaves it out.
    train = [0.18, 0.1, 0.02, -0.003, -0.01, -0.014]
    curves = _curves(train, [0.046, 0.04, 0.033])
    axes = loss_curve_figure(curves, "compressed_si_sdr").axes[0]
    assert axes.get_ylabel() == "loss (compressed_si_sdr)"
    assert axes.get_yscale() == "linear"  # a log axis would leave every value <= 0 out
    low, high = axes.get_ylim()
    assert low < min(train) and high > max(train)
    drawn = {
        line.get_label(): list(line.get_ydata()) for line in axes.get_lines() if not line.get_label().startswith("_")
    }
    assert drawn == {"train": train, "val (without the SI-SDR term)": [0.046, 0.04, 0.033]}
    mse = loss_curve_figure(_curves([1.0, 0.1, 0.01], [0.5, 0.05]), "mse").axes[0]
    assert (mse.get_yscale(), mse.get_ylabel()) == ("linear", "loss (mse)")
    assert loss_curve_figure(curves, None).axes[0].get_ylabel() == "loss"


def test_the_page_says_which_loss_the_curves_are(inputs):
    page = build_report(dataclasses.replace(inputs, loss="compressed_si_sdr"))
    section = page[page.index("<h2>Loss curves") : page.index("Test loss per group")]
    assert "Loss: <code>compressed_si_sdr</code> (<code>train.loss</code>)" in section
    assert "the validation loss is the same without the SI-SDR term" in section
    assert 'alt="compressed_si_sdr against step"' in section
    unknown = build_report(inputs)
    assert "The loss (<code>train.loss</code>) is not known" in unknown


def test_the_loss_name_comes_from_the_checkpoint_that_the_curves_trained(tmp_path):
    model = tmp_path / "models/unet.pt"
    assert training_loss(model) is None
    settings = {"channels": [4, 8], "init": "kaiming", "output": "sigmoid"}
    save_checkpoint(model, new_unet(settings["channels"]), {"model": settings, "train": {"loss": "mse"}})
    assert training_loss(model) == "mse"
    save_checkpoint(model, new_unet(settings["channels"]), {"model": settings})
    assert training_loss(model) is None


def test_the_report_script_falls_back_on_params_while_no_model_is_there(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("report_script", REPO / "scripts" / "report.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setattr(script, "PARAMS", tmp_path / "params.yaml")
    assert script.params_loss() is None
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    assert script.params_loss() == "compressed_si_sdr"


def test_the_report_script_charts_each_kind_of_the_sweep(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("report_script", REPO / "scripts" / "report.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    kinds = yaml.safe_load((REPO / "params.yaml").read_text())["evaluate"]["sweep_kinds"]
    monkeypatch.setattr(script, "PARAMS", REPO / "params.yaml")
    assert script.sweep_kinds() == kinds
    monkeypatch.setattr(script, "PARAMS", tmp_path / "params.yaml")  # none: the folders the sweep wrote
    monkeypatch.setattr(script, "SWEEP_PLOTS", tmp_path / "sweep")
    assert script.sweep_kinds() == []
    for kind in ("white", "pink"):
        (tmp_path / "sweep" / kind).mkdir(parents=True)
    (tmp_path / "sweep" / "stoi.csv").write_text("snr_db\n")  # the layout before the kinds: no kind
    assert script.sweep_kinds() == ["pink", "white"]
    files = script.sweep_files(["white"])
    assert files == {"white": {metric: tmp_path / "sweep" / "white" / f"{metric}.csv" for metric in QUALITY}}
