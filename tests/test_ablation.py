"""The ablation's steps: from the documented study recipe to the default, one named change at a time."""

import re
import sys

import yaml
from conftest import REPO

from audiomnist_denoise.params import Params

sys.path.insert(0, str(REPO / "scripts"))
from ablation import STEPS, overrides  # noqa: E402


def study_flags() -> dict[str, str]:
    text = (REPO / "docs/results.md").read_text()
    command = re.search(r"<!-- study-recipe -->\s*```\w*\s*(dvc exp run [^\n]+)", text).group(1)
    return dict(flag.split("=", 1) for flag in re.findall(r"-S (\S+)", command))


def params_of(step: int) -> Params:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    for key, value in overrides(step).items():
        section, name = key.split(".")
        raw[section][name] = yaml.safe_load(value)
    return Params.model_validate(raw)  # every step is a valid set of params


def test_the_first_step_is_the_documented_study_recipe_and_the_last_the_default():
    assert overrides(0) == study_flags()
    assert overrides(len(STEPS) - 1) == {}


def test_each_step_changes_only_its_own_keys_and_every_step_is_valid():
    for step in range(1, len(STEPS)):
        before, after = params_of(step - 1).model_dump(), params_of(step).model_dump()
        changed = {
            f"{section}.{key}"
            for section in before
            for key in before[section]
            if before[section][key] != after[section][key]
        }
        name, _, undo = STEPS[step]
        assert changed and changed <= set(undo), name
