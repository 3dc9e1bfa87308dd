"""The errors the pipeline raises for bad input; stages turn each into a one-line message."""

from dataclasses import dataclass
from pathlib import Path

_LISTED_BAD_FILES = 20  # in a message; the caller keeps the full list


class PipelineError(Exception):
    """Bad input: a file, a parameter or an archive that the pipeline refuses, with the reason."""


@dataclass(frozen=True, order=True)
class BadFile:
    """A file refused and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class BadFileError(PipelineError):
    """One bad file, its reason kept apart from its path so that a caller can collect many."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(str(path), reason)  # both in args: the error crosses process boundaries pickled
        self.bad = BadFile(str(path), reason)

    def __str__(self) -> str:
        return str(self.bad)


class BadFilesError(PipelineError):
    """Many bad files at once: the message lists the first few and counts the rest, `bad_files` has them all."""

    def __init__(self, summary: str, bad_files: list[BadFile]):
        super().__init__(summary, bad_files)
        self.summary, self.bad_files = summary, bad_files

    def __str__(self) -> str:
        listed = "; ".join(str(bad) for bad in self.bad_files[:_LISTED_BAD_FILES])
        unlisted = len(self.bad_files) - _LISTED_BAD_FILES
        return f"{self.summary}: {listed}" + (f"; and {unlisted} more" if unlisted > 0 else "")
