"""Fetching the real AudioMNIST: a pinned commit's archive, resumable, checksummed, safely extracted."""

import hashlib
import logging
import re
import shutil
import tarfile
import zlib
from pathlib import Path, PurePosixPath

import requests
from tqdm import tqdm

from ..errors import PipelineError
from ..fsutil import atomic_directory
from .corpus import META_FILE

log = logging.getLogger(__name__)

AUDIOMNIST_COMMIT = "ce04129aaa56d47d11a8d9cc1247bac2cafac9b7"
AUDIOMNIST_URL = f"https://github.com/soerenab/AudioMNIST/archive/{AUDIOMNIST_COMMIT}.tar.gz"
# What the corpus needs from the archive: the recordings and the metadata file.
_WANTED = re.compile(rf"[^/]+/data/([0-9]{{2}}/[^/]+\.wav|{re.escape(META_FILE)})")
_CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, destination: Path, sha256: str | None, timeout: float = 60.0) -> Path:
    """Download `url` to `destination` and check it against `sha256`.

    A partial download (`destination` + ".part") is resumed with an HTTP Range request
    where the server allows it. A finished file whose checksum does not match is
    deleted and refused. With no `sha256` pinned the file is kept but refused, and the
    error gives its checksum so that it can be checked and pinned.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    if not destination.exists():
        _download(url, destination, timeout)
    actual = sha256_of(destination)
    if sha256 is None:
        raise PipelineError(
            f"{destination}: no SHA-256 pinned for {url}; the downloaded file has sha256 {actual}. "
            f"Check it and set data.audiomnist_sha256: {actual}"
        )
    if actual != sha256:
        destination.unlink()
        raise PipelineError(f"{url}: checksum mismatch (expected sha256 {sha256}, got {actual}); file deleted")
    return destination


def _download(url: str, destination: Path, timeout: float) -> None:
    part = destination.with_name(destination.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        with requests.get(url, headers=headers, stream=True, timeout=timeout) as response:
            if response.status_code == 416:  # the part file is already complete
                part.rename(destination)
                return
            response.raise_for_status()
            resumed = response.status_code == 206
            if not resumed:
                offset = 0
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length else None
            with (
                open(part, "ab" if resumed else "wb") as stream,
                tqdm(
                    total=total, initial=offset, unit="B", unit_scale=True, desc=f"download {destination.name}"
                ) as bar,
            ):
                for block in response.iter_content(_CHUNK):
                    stream.write(block)
                    bar.update(len(block))
    except requests.RequestException as exc:
        raise PipelineError(f"{url}: download failed ({exc}); rerun to resume") from None
    if total is not None and part.stat().st_size != total:
        raise PipelineError(f"{url}: download incomplete ({part.stat().st_size} of {total} bytes); rerun to resume")
    part.rename(destination)


def _safe_relative(name: str) -> PurePosixPath:
    """A member's path, refused if it is absolute or climbs out of the target folder."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise PipelineError(f"archive member {name!r} would leave the target folder; archive refused")
    return path


def extract_audiomnist(archive: Path, target: Path) -> Path:
    """Extract the recordings and metadata of an AudioMNIST archive; the folder holding them.

    Every member is checked, wanted or not: an archive with any member whose path
    leaves `target`, or any link, is refused as a whole and nothing is kept.
    """
    with atomic_directory(target) as partial:
        try:
            with tarfile.open(archive) as tar:
                for member in tar:
                    relative = _safe_relative(member.name)
                    if member.issym() or member.islnk():
                        raise PipelineError(f"archive member {member.name!r} is a link; archive refused")
                    if not (member.isfile() and _WANTED.fullmatch(relative.as_posix())):
                        continue
                    destination = partial.joinpath(*relative.parts[2:])
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    with tar.extractfile(member) as source, open(destination, "wb") as stream:
                        shutil.copyfileobj(source, stream)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:  # truncated or corrupt
            raise PipelineError(f"{archive}: cannot extract ({exc})") from None
        if not (partial / META_FILE).is_file():
            raise PipelineError(f"{archive}: no data/{META_FILE} inside; not an AudioMNIST archive")
    return target


def fetch_audiomnist(cache: Path, sha256: str | None, url: str = AUDIOMNIST_URL) -> Path:
    """The AudioMNIST data folder, downloaded and extracted into `cache` once and reused."""
    extracted = cache / f"AudioMNIST-{AUDIOMNIST_COMMIT}"
    if (extracted / META_FILE).is_file():
        return extracted
    archive = fetch(url, cache / f"AudioMNIST-{AUDIOMNIST_COMMIT}.tar.gz", sha256)
    log.info("extracting %s", archive)
    return extract_audiomnist(archive, extracted)
