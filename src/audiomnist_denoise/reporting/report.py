"""An offline report: the pipeline's metrics, charts and audio samples as one self-contained HTML page.

It leads with what a listener needs: each method's speech quality on the test clips, the
same under every noise kind on the test speakers and the natural voices (with the
conditions where the default method falls below the noisy input), against the input's SNR
for each kind of the sweep, then every method's audio for each sample; the training curves,
the spectrogram loss per group and every raw metric follow.

`dvc plots show` writes pages that load Vega from a CDN, so on a machine without network
their charts stay blank. This page holds everything inline instead: charts are PNGs drawn
with matplotlib and embedded as base64 data URIs, audio as `data:audio/wav` URIs, styles in
one <style> block. Any input may be missing (the pipeline may not have reached it yet): its
place on the page says so, and only a report with no input at all is refused.
"""

import base64
import html
import io
import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..errors import PipelineError
from ..evaluation.conditions import HARM_METRICS, MEAN_KIND, SET_NAMES
from ..fsutil import write_text_atomic
from ..model.checkpoint import read_config
from ..names import CEILINGS, DEFAULT_METHOD, METHOD_LABELS, QUALITY
from .plots import loss_bars

log = logging.getLogger(__name__)
Parsed = TypeVar("Parsed")

_STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1, h2, h3 { font-weight: 600; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
.tables { display: flex; flex-wrap: wrap; gap: 2em; align-items: flex-start; }
table { border-collapse: collapse; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .2em .6em; text-align: left; }
td.number { text-align: right; font-family: monospace; }
caption { font-weight: 600; text-align: left; padding-bottom: .3em; }
img { max-width: 100%; height: auto; }
audio { width: 100%; }
.players { display: grid; grid-template-columns: repeat(5, 1fr); gap: .6em 1em; font-size: .9em; }
.harm { font-weight: 600; }
tr.ceiling { color: #666; font-style: italic; background: #f6f6f6; }
td.best { font-weight: bold; }
.source, .missing { font-size: .9em; }
.source { color: #666; }
.missing { background: #fff4e5; border-left: 4px solid #f0a030; padding: .4em .8em; }
"""


@dataclass(frozen=True)
class ReportInputs:
    """Where the pipeline's outputs are. Any of them may be missing."""

    quality: Path  # JSON with test.{method}.{metric} for the methods of names.METHOD_LABELS, and the no-harm list
    conditions: Path  # JSON with {set: {kind: {method: {metric: value}}}} for the sets of SET_NAMES, and snr_db
    sweep: dict[str, dict[str, Path]]  # noise kind -> metric of names.QUALITY -> CSV: snr_db, then one per method
    metrics: dict[str, Path]  # table title -> JSON file of numbers, flat or nested
    loss_curves: dict[str, Path]  # series label -> TSV with columns step and loss
    group_tables: dict[str, Path]  # group column -> CSV with that column, then mse, identity_mse, clips
    sample_figures: Path  # folder of {clip_id}.png
    sample_audio: Path  # folder of {clip_id}_{source}.wav, one per source of sample_sources
    sample_sources: tuple[str, ...]  # in the order the players are shown
    loss: str | None = None  # train.loss, the loss of the curves (`training_loss`); None: not known

    def any_present(self) -> bool:
        files = [self.quality, self.conditions, *self.metrics.values(), *self.loss_curves.values()]
        files += [path for charts in self.sweep.values() for path in charts.values()] + [*self.group_tables.values()]
        return any(path.is_file() for path in files) or any(self.sample_figures.glob("*.png"))


class _Unavailable(Exception):
    """An input the page cannot show; the message takes its place on the page."""


def _parsed(path: Path, parse: Callable[[Path], Parsed]) -> Parsed:
    """`parse(path)`; a missing file, or one that does not read or parse, as _Unavailable naming it."""
    if not path.is_file():
        raise _Unavailable(f"{path} not found")
    try:
        return parse(path)
    except (OSError, ValueError) as exc:  # e.g. read while the pipeline rewrites it
        raise _Unavailable(f"{path} could not be read ({type(exc).__name__})") from None


def _read_json(path: Path) -> dict:
    values = _parsed(path, lambda path: json.loads(path.read_text()))
    if not isinstance(values, dict):
        raise _Unavailable(f"{path} holds no object of named values")
    return values


def _read_table(path: Path, columns: list[str], sep: str = ",", text_column: str | None = None) -> pd.DataFrame:
    """The file's `columns`, rows with a missing value dropped; `text_column` stays text (speaker "07", not 7)."""
    dtype = {text_column: str} if text_column else None
    table = _parsed(path, lambda path: pd.read_csv(path, sep=sep, dtype=dtype))
    absent = [column for column in columns if column not in table.columns]
    if absent:
        raise _Unavailable(f"{path} has no column {', '.join(absent)}")
    return table[columns].dropna()


def _note(missing: str) -> str:
    """A visible note where an input could not be shown; logged too, so `make report` says it as well."""
    log.warning("%s; left out of the report", missing)
    return f'<p class="missing">Not shown: {html.escape(missing)}.</p>'


def _shown_or_noted(render: Callable[..., str], *args: object) -> str:
    """`render(*args)`, or where an input is unavailable, a note saying which and why."""
    try:
        return render(*args)
    except _Unavailable as missing:
        return _note(str(missing))


def _data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _image(png: bytes, alt: str) -> str:
    return f'<img src="{_data_uri("image/png", png)}" alt="{html.escape(alt)}">'


def _source_line(*paths: Path) -> str:
    if not paths:
        return ""
    return f'<p class="source">From {", ".join(f"<code>{html.escape(str(path))}</code>" for path in paths)}</p>'


def _figure_png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})  # no version stamp: same numbers, same bytes
    return buffer.getvalue()


def flatten_metrics(values: dict, prefix: str = "") -> dict[str, object]:
    """Nested keys joined with dots, as `dvc metrics show` names them: {"val": {"loss": 1}} -> {"val.loss": 1}."""
    flat = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        flat |= flatten_metrics(value, f"{name}.") if isinstance(value, dict) else {name: value}
    return flat


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f'<td class="number">{value:.6g}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="number">{value}</td>'
    if isinstance(value, list):  # one item a line: an item may hold commas (the no-harm list's do)
        return f"<td>{'<br>'.join(html.escape(str(item)) for item in value) if value else 'none'}</td>"
    return f"<td>{'n/a' if value is None else html.escape(str(value))}</td>"


def _metrics_table(title: str, path: Path) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th>{_cell(value)}</tr>"
        for name, value in flatten_metrics(_read_json(path)).items()
    )
    caption = f"{html.escape(title)} <code>{html.escape(str(path))}</code>"
    return f"<table><caption>{caption}</caption>{rows}</table>"


def _quality_table(path: Path) -> str:
    metrics = flatten_metrics(_read_json(path))
    methods = [method for method in METHOD_LABELS if f"test.{method}.{next(iter(QUALITY))}" in metrics]
    if not methods:
        raise _Unavailable(f"{path} has no speech-quality metrics (test.<method>.si_sdr)")
    values = {(method, metric): metrics.get(f"test.{method}.{metric}") for method in methods for metric in QUALITY}
    best = {
        metric: max((values[method, metric] for method in methods if method not in CEILINGS), default=None)
        for metric in QUALITY
    }
    header = "<tr><th>method</th>" + "".join(f"<th>{html.escape(name)}</th>" for name, _ in QUALITY.values())
    rows = []
    for method in methods:
        cells = []
        for metric, (_, spec) in QUALITY.items():
            value = values[method, metric]
            if value is None:
                cells.append("<td>n/a</td>")
                continue
            best_class = " best" if method not in CEILINGS and value == best[metric] else ""
            cells.append(f'<td class="number{best_class}">{format(value, spec)}</td>')
        row_class = ' class="ceiling"' if method in CEILINGS else ""
        label = f"<code>{html.escape(method)}</code>: {html.escape(METHOD_LABELS[method])}"
        rows.append(f"<tr{row_class}><th>{label}</th>{''.join(cells)}</tr>")
    caption = f"Speech quality on the test clips <code>{html.escape(str(path))}</code>"
    return f"<table><caption>{caption}</caption>{header}</tr>{''.join(rows)}</table>"


def quality_section(path: Path) -> str:
    """The methods x metrics table: higher is better everywhere, the best method in bold, the ceilings in grey."""
    note = (
        "<p>Higher is better in every column. The best method per column is in bold; the grey rows are ceilings "
        "(they use the clean recording), not methods.</p>"
    )
    return f"<h2>Speech quality per method</h2>{note}{_shown_or_noted(_quality_table, path)}"


# One colour per method in every chart, the ceilings' among them.
_COLOURS = dict(zip(METHOD_LABELS, (f"C{i}" for i in range(len(METHOD_LABELS))), strict=True))


def harm_section(path: Path) -> str:
    """The conditions where the default method is below the noisy input on STOI or PESQ (eval.json's "harm")."""
    return f"<h3>Where the default method is below the noisy input</h3>{_shown_or_noted(_harm_list, path)}"


def _harm_list(path: Path) -> str:
    harm = _read_json(path).get("harm")
    if not isinstance(harm, list):
        raise _Unavailable(f"{path} has no no-harm list (harm)")
    names = [QUALITY[metric][0] for metric in HARM_METRICS]
    default = f"The default method (<code>{DEFAULT_METHOD}</code>)"
    if not harm:
        both = " and ".join(names)
        verdict = f"{default} is at or above the noisy input's {both} in every condition, to the 3 decimals shown."
        return f'<p class="harm">{verdict}</p>{_source_line(path)}'
    items = "".join(f"<li>{html.escape(str(found))}</li>" for found in harm)
    verdict = f"{default} is below the noisy input's {' or '.join(names)} in:"
    return f'<p class="harm">{verdict}</p><ul>{items}</ul>{_source_line(path)}'


def _set_table(values: dict, name: str, path: Path) -> pd.DataFrame:
    """`values[name]` ({kind: {method: {metric: value}}}) as one row per (kind, method), a column per metric."""
    kinds = values.get(name)
    if not isinstance(kinds, dict) or not kinds:
        raise _Unavailable(f"{path} has no {SET_NAMES[name]} ({name})")
    try:
        rows = {(kind, method): scores for kind, methods in kinds.items() for method, scores in methods.items()}
        table = pd.DataFrame.from_dict(rows, orient="index")[list(QUALITY)].astype(float)
    except (AttributeError, KeyError, TypeError, ValueError):
        raise _Unavailable(f"{path}: {name} is not each method's {', '.join(QUALITY)} per noise kind") from None
    table.index.names = ["kind", "method"]
    return table


def conditions_figure(table: pd.DataFrame, title: str) -> Figure:
    """A panel per metric: per noise kind (and their mean), a bar per method, the ceilings hatched."""
    kinds = list(dict.fromkeys(table.index.get_level_values("kind")))
    methods = [method for method in METHOD_LABELS if method in table.index.get_level_values("method")]
    figure = Figure(figsize=(11.0, 6.6), dpi=100, layout="constrained")
    width, positions = 0.84 / len(methods), np.arange(len(kinds))
    for panel, (metric, (name, _)) in zip(figure.subplots(2, 2).flat, QUALITY.items(), strict=True):
        for i, method in enumerate(methods):
            heights = [table.loc[(kind, method), metric] if (kind, method) in table.index else np.nan for kind in kinds]
            ceiling = dict(hatch="//", alpha=0.5) if method in CEILINGS else {}
            offsets = positions + (i - (len(methods) - 1) / 2) * width
            panel.bar(offsets, heights, width, color=_COLOURS[method], label=method, **ceiling)
        panel.set_xticks(positions, ["mean of\nthe kinds" if kind == MEAN_KIND else kind for kind in kinds])
        panel.set(ylabel=name, title=name)
        panel.axhline(0, color="0.5", linewidth=0.8)
        panel.grid(True, axis="y", alpha=0.3)
    figure.suptitle(title)
    columns = -(-len(methods) // 2)  # two rows: one would be wider than the figure
    figure.legend(*figure.axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=columns)
    return figure


def _conditions_charts(path: Path) -> str:
    values = _read_json(path)
    at = f" at {values['snr_db']:g} dB" if isinstance(values.get("snr_db"), int | float) else ""
    charts = []
    for name, clips in SET_NAMES.items():
        try:
            table = _set_table(values, name, path)
        except _Unavailable as missing:
            charts.append(_note(str(missing)))
            continue
        title = f"Each method under each noise kind{at}, {clips}"
        charts.append(
            f"<h3>{html.escape(clips.capitalize())}</h3>{_image(_figure_png(conditions_figure(table, title)), title)}"
        )
    return "".join(charts)


def conditions_section(path: Path, harm: Path) -> str:
    """Per set of clips, each method's speech quality under each noise kind; then the no-harm list."""
    note = (
        "<p>The test speakers and the natural voices, each remixed under every noise kind at the headline's SNR; "
        "higher is better in every panel, the hatched bars are ceilings.</p>"
    )
    charts = _shown_or_noted(_conditions_charts, path)
    return f"<h2>Speech quality under each noise kind</h2>{note}{_source_line(path)}{charts}{harm_section(harm)}"


def sweep_png(table: pd.DataFrame, metric: str, kind: str | None = None) -> bytes:
    """One line per method against the input's SNR; the ceilings dashed."""
    figure = Figure(figsize=(5.0, 3.4), dpi=100, layout="constrained")  # two abreast on the page
    axes = figure.add_subplot()
    for method in (method for method in METHOD_LABELS if method in table.columns):
        style = "--" if method in CEILINGS else "-"
        axes.plot(table["snr_db"], table[method], style, marker="o", markersize=3, color=_COLOURS[method], label=method)
    title = f"{QUALITY[metric][0]} against SNR" + (f", {kind} noise" if kind else "")
    axes.set(xlabel="SNR of the input (dB)", ylabel=QUALITY[metric][0], title=title)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=7)
    return _figure_png(figure)


def _sweep_chart(metric: str, path: Path, kind: str) -> str:
    table = _parsed(path, pd.read_csv)
    if "snr_db" not in table.columns:
        raise _Unavailable(f"{path} has no column snr_db")
    table = table.sort_values("snr_db")
    return f"<div>{_image(sweep_png(table, metric, kind), f'{metric} against SNR, {kind} noise')}</div>"


def sweep_section(files: dict[str, dict[str, Path]]) -> str:
    """For each noise kind of the sweep, each speech-quality metric against the SNR of the input."""
    blocks = []
    for kind, charts in files.items():
        shown = "".join(_shown_or_noted(_sweep_chart, metric, path, kind) for metric, path in charts.items())
        blocks.append(
            f"<h3>{html.escape(kind.capitalize())} noise</h3>{_source_line(*charts.values())}"
            f'<div class="tables">{shown}</div>'
        )
    body = "".join(blocks) or _note("no noise kind of the sweep to show")
    return f"<h2>Speech quality against SNR</h2>{body}"


def metrics_section(files: dict[str, Path]) -> str:
    """One table of metric names and values per JSON file."""
    tables = "".join(f"<div>{_shown_or_noted(_metrics_table, title, path)}</div>" for title, path in files.items())
    return f'<h2>All metrics</h2><div class="tables">{tables}</div>'


# Validation compares one quantity across losses, so it leaves out compressed_si_sdr's SI-SDR term
# (training.audio_task.AudioTask.error): that curve stays positive while the training loss goes below zero.
_VALIDATION_LEAVES_OUT = {"compressed_si_sdr": "the SI-SDR term"}


def training_loss(model: Path) -> str | None:
    """The loss the curves were trained with: train.loss in the model's checkpoint (the train stage writes both);
    None where the checkpoint is missing or does not say."""
    try:
        return read_config(model)["train"]["loss"]
    except (PipelineError, KeyError) as exc:
        log.debug("no loss name in %s (%s)", model, exc)
        return None


def loss_curve_figure(curves: dict[str, pd.DataFrame], loss: str | None) -> Figure:
    """The loss of each series against the training step, the axis named for `loss` (train.loss), linear: the
    default compressed_si_sdr goes below zero once the SI-SDR term outweighs the rest, which a log axis cannot draw."""
    figure = Figure(figsize=(9, 4), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    for label, curve in curves.items():
        if label == "val" and loss in _VALIDATION_LEAVES_OUT:
            label = f"val (without {_VALIDATION_LEAVES_OUT[loss]})"
        axes.plot(curve["step"], curve["loss"], marker="o" if len(curve) < 50 else None, markersize=3, label=label)
    ylabel = f"loss ({loss})" if loss else "loss"
    axes.set(xlabel="step", ylabel=ylabel, yscale="linear", title="Training and validation loss")
    if any((curve["loss"] <= 0).any() for curve in curves.values()):
        axes.axhline(0, color="0.5", linewidth=0.8)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    return figure


def loss_curve_png(curves: dict[str, pd.DataFrame], loss: str | None) -> bytes:
    return _figure_png(loss_curve_figure(curves, loss))


def loss_curve_section(files: dict[str, Path], loss: str | None = None) -> str:
    """The loss curves drawn together; a series whose file is unavailable is noted and left out."""
    curves, notes = {}, []
    for label, path in files.items():
        try:
            curves[label] = _read_table(path, ["step", "loss"], sep="\t")
        except _Unavailable as missing:
            notes.append(_note(str(missing)))
    alt = f"{loss or 'loss'} against step"
    chart = _image(loss_curve_png(curves, loss), alt) if curves else ""
    if loss is None:
        named = "<p>The loss (<code>train.loss</code>) is not known: no model checkpoint or params to read it from.</p>"
    else:
        left_out = _VALIDATION_LEAVES_OUT.get(loss)
        named = f"<p>Loss: <code>{html.escape(loss)}</code> (<code>train.loss</code>)" + (
            f"; the validation loss is the same without {html.escape(left_out)}.</p>" if left_out else ".</p>"
        )
    return f"<h2>Loss curves</h2>{named}{_source_line(*files.values())}{chart}{''.join(notes)}"


def group_bars_png(means: pd.DataFrame, by: str) -> bytes:
    """plots.loss_bars' figure (model beside identity per group), which writes a file, as PNG bytes."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bars.png"
        loss_bars(means, by, path, f"Mean test loss per {by.replace('_', ' ')}")
        return path.read_bytes()


def _group_chart(by: str, path: Path) -> str:
    means = _read_table(path, [by, "mse", "identity_mse", "clips"], text_column=by)
    return _image(group_bars_png(means, by), f"mean test loss per {by}")


def group_section(files: dict[str, Path]) -> str:
    """Per group table, the model's mean test MSE beside the identity baseline's."""
    charts = "".join(
        f"<h3>By {html.escape(by.replace('_', ' '))}</h3>{_source_line(path)}" + _shown_or_noted(_group_chart, by, path)
        for by, path in files.items()
    )
    return f"<h2>Test loss per group</h2><p>Lower is better; the grey bar is the noisy input itself.</p>{charts}"


def _audio_player(path: Path) -> str:
    return f'<audio controls preload="metadata" src="{_data_uri("audio/wav", _parsed(path, Path.read_bytes))}"></audio>'


def _png_file(path: Path) -> str:
    return _image(_parsed(path, Path.read_bytes), path.stem)


def _sample(figure: Path, audio_folder: Path, sources: tuple[str, ...]) -> str:
    """The clip's figure, then a player per source; the clip id is the figure's name."""
    clip_id = figure.stem
    players = "".join(
        f"<div>{html.escape(source)}{_shown_or_noted(_audio_player, audio_folder / f'{clip_id}_{source}.wav')}</div>"
        for source in sources
    )
    return f'<h3>{html.escape(clip_id)}</h3>{_shown_or_noted(_png_file, figure)}<div class="players">{players}</div>'


def samples_section(figure_folder: Path, audio_folder: Path, sources: tuple[str, ...]) -> str:
    """Each sample's figure with a player for each source: the clean clip and every method's output."""
    figures = sorted(figure_folder.glob("*.png"))
    if figures:
        body = "".join(_sample(figure, audio_folder, sources) for figure in figures)
    else:
        body = _note(f"no sample figures in {figure_folder}")
    return f"<h2>Samples</h2>{_source_line(figure_folder, audio_folder)}{body}"


def build_report(inputs: ReportInputs, title: str = "audiomnist-denoise report") -> str:
    """The whole page as one string, every chart, image and sound inline."""
    sections = (
        quality_section(inputs.quality),
        conditions_section(inputs.conditions, inputs.quality),
        sweep_section(inputs.sweep),
        samples_section(inputs.sample_figures, inputs.sample_audio, inputs.sample_sources),
        loss_curve_section(inputs.loss_curves, inputs.loss),
        group_section(inputs.group_tables),
        metrics_section(inputs.metrics),
    )
    head = f'<meta charset="utf-8"><title>{html.escape(title)}</title><style>{_STYLE}</style>'
    body = f"<h1>{html.escape(title)}</h1>\n" + "\n".join(sections)
    page = f'<!DOCTYPE html>\n<html lang="en"><head>{head}</head>\n<body>{body}\n</body></html>\n'
    # write_text_atomic writes in the locale's encoding: an ASCII page (the rest as character references) suits any.
    return page.encode("ascii", "xmlcharrefreplace").decode("ascii")


def write_report(inputs: ReportInputs, output: Path) -> None:
    """Write the page to `output` through a temporary file; a PipelineError if none of the inputs exists."""
    if not inputs.any_present():
        first = inputs.quality
        raise PipelineError(f"no pipeline outputs to report (e.g. no {first}); run the pipeline first (make repro)")
    write_text_atomic(output, build_report(inputs))
