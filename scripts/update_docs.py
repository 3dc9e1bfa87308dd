"""Write the generated parts of the docs from committed files, so that no number and no default is typed by hand.

    python scripts/update_docs.py          # or `make docs`, from the repository root
    python scripts/update_docs.py --check  # or `make docs-check`: writes nothing; exits 1 naming each file
                                           # that is out of date with the workspace's metrics

Run it after `dvc repro`, and after a change to params.py, params.yaml or dvc.yaml. It writes
- README.md, between its results markers: the headline table, from metrics/eval.json; between its conditions
  markers: the training conditions (params.yaml) and the default method under each noise kind (metrics/conditions.json);
- docs/results.md, between its results, conditions and sweep markers: every results table, from metrics/eval.json,
  dvclive/metrics.json, plots/eval/*.csv, metrics/conditions.json and plots/sweep/{kind}/*.csv (for each kind of
  params.yaml's evaluate.sweep_kinds);
- docs/params.md, whole: every params key with its allowed values, its default (params.yaml), its description
  (the Field descriptions in src/audiomnist_denoise/params.py) and the stages that read it (dvc.yaml).
Text outside the markers is left alone. It reads only files of the repository, so it runs offline.
`generated(root, revision="HEAD")` reads them as committed at a git revision instead of from the workspace:
`dvc repro` on another CPU rewrites the metrics files with slightly different floats, while the committed docs
stay true to the committed metrics (tests/test_docs.py checks those).
"""

import argparse
import inspect
import io
import json
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Annotated, Literal, Union, get_args, get_origin

import pandas as pd
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from audiomnist_denoise.evaluation.conditions import HARM_METRICS, MEAN_KIND, SET_NAMES
from audiomnist_denoise.layout import (
    CONDITION_METRICS,
    EVAL_METRICS,
    EVAL_PLOTS,
    GROUP_TABLES,
    SWEEP_PLOTS,
    TRAINING_METRICS,
)
from audiomnist_denoise.names import BASELINES, CEILINGS, DEFAULT_METHOD, METHOD_LABELS, QUALITY
from audiomnist_denoise.params import Params

README, RESULTS, PARAMS_DOC = Path("README.md"), Path("docs/results.md"), Path("docs/params.md")


class Files:
    """The files the docs are made from: those of the folder `root`, or as committed there at git `revision`."""

    def __init__(self, root: Path, revision: str | None = None):
        self.root, self.revision = Path(root), revision
        self.read: list[Path] = []  # every path read, in order

    def text(self, path: Path | str) -> str:
        path = Path(path)
        self.read.append(path)
        if self.revision is None:
            return (self.root / path).read_text()
        return committed_text(self.root, self.revision, path)

    def json(self, path: Path | str) -> dict:
        return json.loads(self.text(path))

    def csv(self, path: Path | str, **options) -> pd.DataFrame:
        return pd.read_csv(io.StringIO(self.text(path)), **options)


class NotCommitted(LookupError):
    """A file is not at the revision asked for, or `root` is no git checkout (a source archive, say)."""


def committed_text(root: Path, revision: str, path: Path) -> str:
    try:
        shown = subprocess.run(
            ["git", "show", f"{revision}:./{path.as_posix()}"], cwd=root, capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise NotCommitted("git is not installed") from None
    if shown.returncode != 0:
        raise NotCommitted(f"{path} at {revision}: {shown.stderr.strip()}")
    return shown.stdout


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


# Results


def methods_table(metrics: dict) -> str:
    """One row per denoising method: its mean speech-quality scores on the test clips."""
    rows = [
        [f"`{method}`: {label}"] + [format(metrics[f"test.{method}.{key}"], spec) for key, (_, spec) in QUALITY.items()]
        for method, label in METHOD_LABELS.items()
    ]
    return markdown_table(["method"] + [name for name, _ in QUALITY.values()], rows)


def headline(metrics: dict) -> str:
    return (
        f"{methods_table(metrics)}\n\nSpectrogram MSE on the {metrics['test.clips']} test clips: "
        f"U-Net {metrics['test.mse']:.4f}, identity baseline {metrics['test.identity_mse']:.4f} "
        f"(ratio {metrics['test.mse_ratio']:.3f})."
    )


def overall_table(metrics: dict, training: dict) -> str:
    rows = [
        [split, str(metrics[f"{split}.clips"])]
        + [f"{metrics[f'{split}.{key}']:.4f}" for key in ("mse", "identity_mse")]
        + [f"{metrics[f'{split}.mse_ratio']:.3f}"]
        for split in ("val", "test")
    ]
    table = markdown_table(["split", "clips", "U-Net MSE", "identity MSE", "U-Net / identity"], rows)
    return f"{table}\n\nTraining: {training['step']} steps, final training loss {training['train']['loss']:.4f}."


def group_table(table: pd.DataFrame, column: str) -> str:
    rows = [[row[column], str(row.clips), f"{row.mse:.4f}", f"{row.identity_mse:.4f}"] for _, row in table.iterrows()]
    return markdown_table([column.replace("_", " "), "clips", "U-Net MSE", "identity MSE"], rows)


def per_method_table(table: pd.DataFrame, column: str, label: str, suffix: str, spec: str) -> str:
    """One row per value of `column`, one column per method: `{method}{suffix}` formatted with `spec`."""
    rows = [
        [str(row[column])] + [format(row[f"{method}{suffix}"], spec) for method in METHOD_LABELS]
        for _, row in table.iterrows()
    ]
    return markdown_table([label] + [f"`{method}`" for method in METHOD_LABELS], rows)


def results_section(files: Files) -> str:
    metrics = files.json(EVAL_METRICS)
    training = files.json(TRAINING_METRICS)
    parts = [overall_table(metrics, training)]
    for column, name in GROUP_TABLES.items():
        heading = "By age band" if column == "age_band" else f"Test clips by {column}"
        table = files.csv(EVAL_PLOTS / name, dtype={column: str})
        parts.append(f"{heading}:\n\n{group_table(table, column)}")
    parts.append(f"Speech quality of each method on the test clips:\n\n{methods_table(metrics)}")
    for metric in ("stoi", "pesq"):
        for column in ("speaker", "gender"):
            table = files.csv(EVAL_PLOTS / GROUP_TABLES[column], dtype={column: str})
            parts.append(
                f"{QUALITY[metric][0]} by test {column}:\n\n"
                + per_method_table(table, column, column, f"_{metric}", QUALITY[metric][1])
            )
    return "\n\n".join(parts)


def kinds_table(metrics: dict, metric: str) -> str:
    """One row per method, one column per noise kind and the mean over kinds (`metrics`: {kind: {method: {metric:
    value}}}); the best method of each column in bold, the ceilings aside, since they read the clean clip."""
    methods = [method for method in METHOD_LABELS if method in next(iter(metrics.values()))]
    spec = QUALITY[metric][1]
    columns = []
    for values in metrics.values():
        shown = {method: format(values[method][metric], spec) for method in methods}
        best = format(max(values[method][metric] for method in methods if method not in CEILINGS), spec)
        columns.append({m: f"**{v}**" if m not in CEILINGS and v == best else v for m, v in shown.items()})
    rows = [
        [f"`{method}`" + (" (ceiling)" if method in CEILINGS else "")] + [column[method] for column in columns]
        for method in methods
    ]
    header = ["method"] + ["mean of the kinds" if kind == MEAN_KIND else kind for kind in metrics]
    return markdown_table(header, rows)


def harm_sentence(metrics: dict) -> str:
    """The conditions where the default method is below the noisy input (eval.json's "harm"), in words."""
    if "harm" not in metrics:
        return f"{EVAL_METRICS} has no no-harm list: it is from a run before the `conditions` stage."
    names = [QUALITY[metric][0] for metric in HARM_METRICS]
    if not metrics["harm"]:
        return (
            f"The default method (`{DEFAULT_METHOD}`) is at or above the noisy input's {' and '.join(names)} in "
            "every condition, to the 3 decimals shown."
        )
    listed = "\n".join(f"- {found}" for found in metrics["harm"])
    return f"The default method (`{DEFAULT_METHOD}`) is below the noisy input's {' or '.join(names)} in:\n\n{listed}"


def harm_summary(metrics: dict) -> str:
    """The no-harm list in short: the conditions where the default method is below the noisy input, each once."""
    if not metrics.get("harm"):
        return harm_sentence(metrics)
    where = list(dict.fromkeys(found.split(": ", 1)[0] for found in metrics["harm"]))
    names = " or ".join(QUALITY[metric][0] for metric in HARM_METRICS)
    return (
        f"The default method (`{DEFAULT_METHOD}`) is below the noisy input's {names} in {len(where)} conditions: "
        f"{'; '.join(where)} ([the values](docs/results.md#every-noise-kind-and-natural-voices))."
    )


def conditions_section(files: Files) -> str:
    """Per set of clips and metric, every method under each noise kind at the one SNR; then the no-harm list."""
    conditions = files.json(CONDITION_METRICS)
    parts = []
    for name, clips in SET_NAMES.items():
        if name not in conditions:
            parts.append(f"No {clips} in {CONDITION_METRICS}: it is from a run before they were scored.")
            continue
        parts += [
            f"{label}, {clips}, at {conditions['snr_db']:g} dB:\n\n{kinds_table(conditions[name], metric)}"
            for metric, (label, _) in QUALITY.items()
        ]
    return "\n\n".join(parts + [harm_sentence(files.json(EVAL_METRICS))])


def _listed(items: list, conjunction: str = "and") -> str:
    items = [str(item) for item in items]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def _range(values: list[float], unit: str) -> str:
    low, high = values
    return f"{low:g} {unit}" if low == high else f"{low:g} to {high:g} {unit}"


def training_sentence(params: dict) -> str:
    """The default model's training conditions, in words, from params.yaml's train, noise and data sections."""
    train, noise = params["train"], params["noise"]
    if train["noise"] != "fresh":
        return f"The default model trains on the `mix` stage's noisy copies ({noise['kind']}, {noise['snr_db']:g} dB)."
    kinds = drawn = train["noise_kinds"] or [noise["kind"]]
    if train.get("noise_weights"):
        shares = dict.fromkeys(kinds, 0.0)
        for kind, weight in zip(kinds, train["noise_weights"], strict=True):
            shares[kind] += weight / sum(train["noise_weights"])
        kinds = [f"{kind} ({share:.0%})" for kind, share in shares.items()]
    told = [
        f"fresh noise, one kind drawn per clip of {_listed(kinds, 'or')},"
        if len(kinds) > 1
        else f"fresh {kinds[0]} noise"
    ]
    told.append(f"at SNRs drawn from {_range(train['snr_db'], 'dB')}")
    recorded = []
    if train["band_limit_probability"] > 0:
        rates = [f"{rate / 1000:g}" for rate in train["band_limit_rates"]]
        recorded.append(f"{train['band_limit_probability']:.0%} of them band-limited to {_listed(rates, 'or')} kHz")
    if train["gain_db"] != [0, 0]:
        recorded.append(f"at levels of {_range(train['gain_db'], 'dB')}")
    if train["tilt_db_per_octave"] != [0, 0]:
        recorded.append(f"with spectral tilts of {_range(train['tilt_db_per_octave'], 'dB per octave')}")
    if train["reverb_probability"] > 0:
        recorded.append(
            f"{train['reverb_probability']:.0%} in a synthetic room of RT60 {_range(train['reverb_rt60'], 's')}"
        )
    clips = f"the clips of the training speakers{', ' + _listed(recorded) if recorded else ''}"
    kept = train.get("babble_kept_db")
    target = ""
    if "babble" in drawn and kept is not None:
        target = (
            "; babble stays whole in the target, so the model learns to pass other voices through"
            if kept == 0
            else f"; {-kept:g} dB of babble is taken out of the target, no more"
        )
    return f"The default model trains on {clips}, with {' '.join(told)}{target}."


def readme_conditions(files: Files) -> str:
    """How the default model was trained, and its STOI and PESQ beside the noisy input's and the best baseline's
    in each noise kind, on the test speakers and the natural voices; then the no-harm list."""
    conditions = files.json(CONDITION_METRICS)
    baselines = ("spectral_gating", *BASELINES)
    header = ["clips", "noise"] + [
        f"{QUALITY[metric][0]}: {who}"
        for metric in HARM_METRICS
        for who in ("noisy", f"`{DEFAULT_METHOD}`", "best baseline")
    ]
    rows = []
    for name, clips in SET_NAMES.items():
        for kind, values in conditions.get(name, {}).items():
            row = [clips, "mean of the kinds" if kind == MEAN_KIND else f"{kind}, {conditions['snr_db']:g} dB"]
            for metric in HARM_METRICS:
                spec = QUALITY[metric][1]
                best = max(baselines, key=lambda method: values[method][metric])
                row += [format(values["noisy"][metric], spec), format(values[DEFAULT_METHOD][metric], spec)]
                row.append(f"{format(values[best][metric], spec)} (`{best}`)")
            rows.append(row)
    params = yaml.safe_load(files.text("params.yaml"))
    return "\n\n".join(
        [training_sentence(params), markdown_table(header, rows), harm_summary(files.json(EVAL_METRICS))]
    )


def against_noisy(table: pd.DataFrame, name: str, method: str = DEFAULT_METHOD) -> str:
    """Where `method` stands against the noisy input over the sweep's SNRs, in words."""
    below = [f"{snr:g}" for snr in table.snr_db[table[method] < table.noisy]]
    if not below:
        return f"`{method}`'s {name} is at or above the noisy input's at every SNR of the sweep."
    return f"`{method}`'s {name} is below the noisy input's at {', '.join(below)} dB."


def sweep_section(files: Files) -> str:
    """Per noise kind of the sweep (params.yaml's evaluate.sweep_kinds), each metric against the input's SNR."""
    blocks = []
    for kind in yaml.safe_load(files.text("params.yaml"))["evaluate"]["sweep_kinds"]:
        parts, verdicts = [f"### {kind.capitalize()} noise"], []
        for metric, (name, spec) in QUALITY.items():
            table = files.csv(SWEEP_PLOTS / kind / f"{metric}.csv")
            verdicts.append(against_noisy(table, name))
            table["snr_db"] = table.snr_db.map(lambda snr: f"{snr:g}")
            parts.append(
                f"{name} against the input's SNR, {kind} noise:\n\n"
                + per_method_table(table, "snr_db", "SNR (dB)", "", spec)
            )
        blocks.append("\n\n".join(parts + [" ".join(verdicts)]))
    return "\n\n".join(blocks)


def with_section(text: str, name: str, content: str, path: Path) -> str:
    """`text` with what lies between `<!-- name:start -->` and `<!-- name:end -->` replaced by `content`."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    pattern = re.compile(f"{re.escape(start)}.*?{re.escape(end)}", re.DOTALL)
    if not pattern.search(text):
        sys.exit(f"error: {path} has no {start} ... {end} section")
    return pattern.sub(lambda _: f"{start}\n{content}\n{end}", text)


# Params

# Keys that never change an output, so dvc.yaml does not list them, and the stages that read them.
UNLISTED = {
    "data.workers": ["corpus"],
    "noise.workers": ["mix"],
    "features.workers": ["featurize"],
    "train.checkpoint_every": ["train"],
    "evaluate.workers": ["references", "evaluate", "conditions", "samples"],
}
# Where each section's behaviour is explained at length.
SECTION_DOCS = {
    "data": "[data.md](data.md)",
    "noise": "[data.md](data.md#noise)",
    "features": "[method.md](method.md#spectrograms-normalisation-and-the-exact-inverse)",
    "split": "[data.md](data.md#splits)",
    "model": "[method.md](method.md#the-u-net-and-its-training)",
    "train": "[method.md](method.md#the-u-net-and-its-training) and [scaling.md](scaling.md)",
    "evaluate": "[method.md](method.md#the-denoising-methods-compared) and [results.md](results.md)",
    "samples": "[method.md](method.md#audio-samples)",
    "natural": "[data.md](data.md#the-natural-voice-evaluation-set)",
}
PARAMS_INTRO = """\
# Params

<!-- Written by `python scripts/update_docs.py` from src/audiomnist_denoise/params.py, params.yaml and dvc.yaml. \
Edit those, then rerun it. -->

Every tunable number is in `params.yaml`, one section per stage, read through one typed loader
(`src/audiomnist_denoise/params.py`): an unknown key, a wrong type or an out-of-range value stops the stage with
one line naming the key and what is allowed. Validation is strict: `"5"` is not an int and `1` is not a bool.
Try another value without editing the file with `dvc exp run -S section.key=value`.

*Default* is the value in `params.yaml`. *Stages* are those that list the key in `dvc.yaml`: changing it reruns
them and the stages after them. Keys marked (unlisted) never change an output, so no stage lists them and
changing them reruns nothing."""


BOUNDS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


def _bounds(metadata: list) -> str:
    """The constraints in a field's metadata (annotated_types' Ge, Le, ..., pydantic's pattern), as text."""
    found = {name: getattr(item, name) for item in metadata for name in BOUNDS if getattr(item, name, None) is not None}
    if found.keys() == {"ge", "le"}:
        return f"from {found['ge']:g} to {found['le']:g}"
    words = [f"{BOUNDS[name]} {value:g}" for name, value in found.items()]
    return ", ".join(words + [f"matching `{item.pattern}`" for item in metadata if getattr(item, "pattern", None)])


def _length(metadata: list) -> str:
    low = next((item.min_length for item in metadata if hasattr(item, "min_length")), 0)
    high = next((item.max_length for item in metadata if hasattr(item, "max_length")), None)
    if high is None:
        return f">= {low}"
    return f"{low}" if low == high else f"{low} to {high}"


def allowed(annotation, metadata: list) -> str:
    """What a field accepts, from its annotation and its constraints, in words."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        info = next(arg for arg in args[1:] if isinstance(arg, FieldInfo))
        return allowed(args[0], info.metadata)
    if origin in (Union, types.UnionType):
        # A constraint on an optional field applies to its non-null type.
        present = [arg for arg in args if arg is not type(None)]
        return " or ".join(allowed(arg, metadata) for arg in present) + " or `null`"
    if origin is Literal:
        names = [f"`{arg}`" for arg in args]
        return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]
    if origin is list:
        return f"list (length {_length(metadata)}) of {allowed(args[0], [])}"
    return f"{annotation.__name__} {_bounds(metadata)}".strip()


def _default(value) -> str:
    return f"`{value}`" if isinstance(value, str) else f"`{json.dumps(value)}`"


def _fields(model: type[BaseModel], raw: dict, prefix: str = ""):
    """(key, field, params.yaml value) of every leaf field, nested sections flattened to dotted keys."""
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from _fields(field.annotation, raw[name], f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", field, raw[name]


def _stages(key: str, listed: dict[str, list[str]]) -> str:
    stages = [stage for stage, keys in listed.items() if any(key == k or key.startswith(f"{k}.") for k in keys)]
    if stages:
        return ", ".join(f"`{stage}`" for stage in stages)
    if key not in UNLISTED:
        sys.exit(f"error: no stage in dvc.yaml lists {key}; list it there, or add it to UNLISTED in {__file__}")
    return ", ".join(f"`{stage}`" for stage in UNLISTED[key]) + " (unlisted)"


def params_doc(raw_params: dict, dvc: dict) -> str:
    listed = {stage: spec.get("params", []) for stage, spec in dvc["stages"].items()}
    parts = [PARAMS_INTRO]
    for section, field in Params.model_fields.items():
        model = field.annotation
        rows = []
        for key, leaf, value in _fields(model, raw_params[section]):
            if not leaf.description:
                sys.exit(f"error: {section}.{key} has no Field(description=...) in src/audiomnist_denoise/params.py")
            description = leaf.description.replace("|", "\\|")
            stages = _stages(f"{section}.{key}", listed)
            rows.append([f"`{key}`", allowed(leaf.annotation, leaf.metadata), _default(value), stages, description])
        table = markdown_table(["key", "allowed", "default", "stages", "description"], rows)
        summary = inspect.cleandoc(model.__doc__)
        parts.append(f"## `{section}`\n\n{summary} More in {SECTION_DOCS[section]}.\n\n{table}")
    return "\n\n".join(parts) + "\n"


def generated(root: Path, revision: str | None = None) -> dict[Path, str]:
    """Each generated file's path (relative to `root`) and the text it should hold, from the files of `root`, or
    from those committed at git `revision` (NotCommitted where one is not)."""
    return generated_from(Files(root, revision))


def generated_from(files: Files) -> dict[Path, str]:
    metrics = files.json(EVAL_METRICS)
    readme = with_section(files.text(README), "results", headline(metrics), README)
    readme = with_section(readme, "conditions", readme_conditions(files), README)
    results = with_section(files.text(RESULTS), "results", results_section(files), RESULTS)
    results = with_section(results, "conditions", conditions_section(files), RESULTS)
    results = with_section(results, "sweep", sweep_section(files), RESULTS)
    raw_params = yaml.safe_load(files.text("params.yaml"))
    dvc = yaml.safe_load(files.text("dvc.yaml"))
    return {README: readme, RESULTS: results, PARAMS_DOC: params_doc(raw_params, dvc)}


GENERATED = (README, RESULTS, PARAMS_DOC)


def changed_since(root: Path, revision: str, paths: list[Path]) -> list[Path]:
    """Those of `paths` (inputs, not the generated files) whose workspace text differs from `revision`'s;
    none where `root` is no git checkout."""
    changed = []
    for path in dict.fromkeys(paths):
        if path in GENERATED:
            continue
        try:
            committed = committed_text(root, revision, path)
        except NotCommitted:
            return []
        if not (root / path).is_file() or (root / path).read_text() != committed:
            changed.append(path)
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is out of date")
    check = parser.parse_args().check
    files = Files(Path("."))
    try:
        texts = generated_from(files)
    except FileNotFoundError as missing:  # e.g. a run from before a stage that writes one
        sys.exit(f"error: {missing.filename} not found: run `dvc repro` first")
    stale = [path for path, text in texts.items() if not path.is_file() or path.read_text() != text]
    if check:
        if stale:
            changed = changed_since(Path("."), "HEAD", files.read)
            since = f"\nchanged since HEAD (as after `dvc repro` on another CPU): {', '.join(map(str, changed))}"
            sys.exit(
                f"error: out of date: {', '.join(map(str, stale))}\n"
                "(against the workspace's metrics files, params.py, params.yaml and dvc.yaml)"
                + (since if changed else "")
                + "\n`make docs` (python scripts/update_docs.py) rewrites them"
            )
        print("the generated docs are up to date with the workspace's metrics files and params")
        return
    for path in stale:
        path.write_text(texts[path])
    print(f"updated: {', '.join(map(str, stale)) or 'nothing, all up to date'}")


if __name__ == "__main__":
    main()
