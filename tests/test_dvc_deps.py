"""Every stage's DVC deps cover the project code it runs: a change to any module a stage script
imports, directly or through other modules, must make `dvc status` report that stage.

Imports are read with `ast`, so nothing is executed, and every import counts, including those
inside functions: a module a stage may import is a module whose change may change its outputs.
"""

import ast
from pathlib import Path

import yaml
from conftest import REPO

PACKAGE = "audiomnist_denoise"
SOURCE = Path("src")


def module_file(name: str, repo: Path, script_dir: Path) -> Path | None:
    """The project file that `import name` loads, relative to `repo`; None for anything outside the project."""
    parts = name.split(".")
    if parts[0] == PACKAGE:
        base = SOURCE.joinpath(*parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if (repo / candidate).is_file():
                return candidate
        return None
    local = script_dir / f"{name}.py"  # a sibling module, e.g. stages/_stage.py
    return local if len(parts) == 1 and (repo / local).is_file() else None


def package_of(path: Path) -> str:
    """The dotted package a source file belongs to: src/audiomnist_denoise/x.py -> audiomnist_denoise."""
    return ".".join(path.relative_to(SOURCE).parent.parts)


def imported_names(path: Path, repo: Path) -> set[str]:
    """The dotted names of every module a file imports, relative imports resolved; for
    `from package import name`, both the package and package.name (a submodule if it is one)."""
    tree = ast.parse((repo / path).read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = package_of(path).split(".")
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_closure(script: Path, repo: Path) -> set[Path]:
    """Every project file that running `script` may load: itself, the modules it imports, theirs, and
    the `__init__.py` of every package on the way."""
    seen, todo = set(), [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_names(path, repo):
            found = module_file(name, repo, script.parent)
            parents = name.split(".")
            inits = [module_file(".".join(parents[:i]), repo, script.parent) for i in range(1, len(parents))]
            todo.extend(file for file in [found, *inits] if file is not None)
    return seen


def uncovered(dvc_yaml: dict, repo: Path) -> list[tuple[str, str]]:
    """(stage, file) for each project file a stage's script may load that none of its deps covers
    (a dep covers a file when it is the file or a folder above it)."""
    missing = []
    for stage, spec in dvc_yaml["stages"].items():
        script = Path(spec["cmd"].split()[1])
        deps = [Path(dep) for dep in spec.get("deps", [])]
        for path in sorted(import_closure(script, repo)):
            if not any(path == dep or dep in path.parents for dep in deps):
                missing.append((stage, path.as_posix()))
    return missing


def code_deps(script: Path, repo: Path) -> set[str]:
    """The code deps a stage should list: its closure, with each sub-package named by its folder (which keeps
    dvc.yaml short) and the core's modules one by one."""
    deps = set()
    for path in import_closure(script, repo):
        parts = path.parts
        in_subpackage = parts[0] == SOURCE.name and len(parts) > 3  # src/audiomnist_denoise/<package>/<module>
        deps.add(Path(*parts[:3]).as_posix() if in_subpackage else path.as_posix())
    return deps


def test_every_stage_depends_on_all_the_code_it_imports():
    missing = uncovered(yaml.safe_load((REPO / "dvc.yaml").read_text()), REPO)
    assert not missing, "dvc.yaml misses deps: " + "; ".join(f"stage {stage} imports {path}" for stage, path in missing)


def test_code_deps_name_sub_packages_by_folder_and_nothing_a_stage_does_not_import():
    for stage, spec in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].items():
        listed = {dep for dep in spec["deps"] if dep.startswith(("stages/", "src/"))}
        expected = code_deps(Path(spec["cmd"].split()[1]), REPO)
        assert listed == expected, (
            f"stage {stage}: extra {sorted(listed - expected)}, missing {sorted(expected - listed)}"
        )


def test_a_dep_left_out_is_named_with_its_stage():
    dvc_yaml = yaml.safe_load((REPO / "dvc.yaml").read_text())
    dvc_yaml["stages"]["evaluate"]["deps"].remove("src/audiomnist_denoise/model")
    assert ("evaluate", "src/audiomnist_denoise/model/unet.py") in uncovered(dvc_yaml, REPO)


def test_the_closure_follows_imports_through_other_modules(tmp_path):
    """A stage imports a.py, which imports b.py relatively, inside a function: both count, and the package."""
    package = tmp_path / "src" / PACKAGE
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from .b import g\n    return g()\n")
    (package / "b.py").write_text("import numpy\n\ndef g():\n    return 1\n")
    (package / "unused.py").write_text("")
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages" / "_shared.py").write_text("")
    (tmp_path / "stages" / "one.py").write_text(f"import _shared\nfrom {PACKAGE} import a\n")
    closure = {path.as_posix() for path in import_closure(Path("stages/one.py"), tmp_path)}
    assert closure == {
        "stages/one.py",
        "stages/_shared.py",
        f"src/{PACKAGE}/__init__.py",
        f"src/{PACKAGE}/a.py",
        f"src/{PACKAGE}/b.py",
    }
    stage = {"stages": {"one": {"cmd": "python stages/one.py", "deps": ["stages/one.py", f"src/{PACKAGE}"]}}}
    assert uncovered(stage, tmp_path) == [("one", "stages/_shared.py")]
