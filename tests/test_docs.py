"""The committed docs: generated parts up to date, a short README, and links that lead somewhere.

The results tables are checked as committed, against the metrics as committed: `make repro` on another CPU
rewrites the workspace's metrics files with slightly different floats, and `make test` after it must still pass.
`make docs-check` says whether the docs match the workspace's metrics.
"""

import importlib.util
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, skip_unless_git_checkout

README_MAX_LINES = 200
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def load_generator():
    spec = importlib.util.spec_from_file_location("update_docs", REPO / "scripts" / "update_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def committed_results_problems(root: Path, revision: str = "HEAD") -> list[str]:
    """Where the results tables of README.md and docs/results.md, as committed at `revision`, differ from those
    generated from the metrics files as committed there: one line each, none if they agree."""
    generator = load_generator()
    expected = generator.generated(root, revision)
    return [
        f"{path} is out of date with the metrics files committed at {revision}: run `make docs` and commit both"
        for path in (generator.README, generator.RESULTS)
        if generator.committed_text(root, revision, path) != expected[path]
    ]


def test_params_doc_is_up_to_date():
    # From params.py, params.yaml and dvc.yaml alone: no metrics file is needed, not even one a run has yet to write.
    raw_params, dvc = (yaml.safe_load((REPO / name).read_text()) for name in ("params.yaml", "dvc.yaml"))
    assert (REPO / "docs" / "params.md").read_text() == load_generator().params_doc(raw_params, dvc), (
        "docs/params.md is out of date with params.py, params.yaml or dvc.yaml: run `make docs`"
    )


def test_results_tables_are_up_to_date():
    skip_unless_git_checkout("the committed docs and metrics")
    assert committed_results_problems(REPO) == []


def test_the_sweep_sentence_names_each_snr_where_the_model_is_below_the_noisy_input():
    against_noisy = load_generator().against_noisy
    table = pd.DataFrame({"snr_db": [-5.0, 0.0, 5.0], "noisy": [0.8, 0.88, 0.93], "unet_mask": [0.85, 0.87, 0.92]})
    assert against_noisy(table, "STOI") == "`unet_mask`'s STOI is below the noisy input's at 0, 5 dB."
    table["unet_mask"] = table.noisy
    assert against_noisy(table, "STOI").endswith("STOI is at or above the noisy input's at every SNR of the sweep.")


def test_readme_is_short():
    lines = len((REPO / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/ (at most {README_MAX_LINES})"


def anchors(path) -> set[str]:
    """GitHub's anchors for a markdown file's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", path.read_text(), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("page", DOCS, ids=lambda page: str(page.relative_to(REPO)))
def test_relative_links_lead_to_a_file_and_heading(page):
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: {target} does not exist"
        if anchor:
            assert anchor in anchors(linked), f"{page.name}: {target} names no heading of {linked.name}"
