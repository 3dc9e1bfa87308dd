"""fetch / extract_audiomnist against a local HTTP server: checksums, resume, unsafe or incomplete archives."""

import functools
import http.server
import io
import re
import tarfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from audiomnist_denoise.data.corpus import META_FILE
from audiomnist_denoise.data.download import AUDIOMNIST_COMMIT, extract_audiomnist, fetch, fetch_audiomnist, sha256_of
from audiomnist_denoise.errors import PipelineError

TOP = "AudioMNIST-0123abc"  # GitHub names the top folder after the repository and commit
UNRELATED = {"README.md": b"# AudioMNIST\n", "models/x.py": b"print('not data')\n"}
WRONG_SHA = "0" * 64
EVIL = b"evil"


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder, answering `Range: bytes=N-` (what a resume sends) with 206; logs every Range header."""

    def do_GET(self):
        header = self.headers.get("Range")
        self.server.ranges.append(header)
        match = re.fullmatch(r"bytes=(\d+)-", header or "")
        path = Path(self.translate_path(self.path))
        if not (match and path.is_file()):
            return super().do_GET()
        data, start = path.read_bytes(), int(match[1])
        if start >= len(data):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])

    def log_message(self, format, *args):
        pass  # keep pytest output clean


@dataclass
class Server:
    root: Path  # the served folder
    base: str  # its URL
    ranges: list = field(default_factory=list)  # the Range header of each request received, None when absent

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"


@pytest.fixture
def server(tmp_path: Path):
    root = tmp_path / "served"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(RangeHandler, directory=str(root)))
    served = Server(root, f"http://127.0.0.1:{httpd.server_port}")
    httpd.ranges = served.ranges
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield served
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def build_archive(path: Path, corpus: Path, with_meta: bool = True, extra: tuple[tarfile.TarInfo, ...] = ()) -> Path:
    """A gzip tar laid out like GitHub's archive of AudioMNIST: `corpus` under TOP/data, unrelated files beside it.

    `extra` members come last, so a refusal happens after wanted files were already extracted.
    """
    with tarfile.open(path, "w:gz") as tar:
        for name, data in UNRELATED.items():
            info = tarfile.TarInfo(f"{TOP}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for file in sorted(corpus.rglob("*")):
            if file.is_file() and (with_meta or file.name != META_FILE):
                tar.add(file, f"{TOP}/data/{file.relative_to(corpus).as_posix()}")
        for info in extra:
            tar.addfile(info, io.BytesIO(EVIL) if info.isfile() else None)
    return path


def member(name: str, type: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    """A hostile member for `build_archive`: a small file, or a link to `linkname`."""
    info = tarfile.TarInfo(name)
    info.type, info.linkname = type, linkname
    info.size = len(EVIL) if info.isfile() else 0
    return info


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def archive(server: Server, corpus: Path) -> Path:
    """A good archive, served as archive.tar.gz."""
    return build_archive(server.root / "archive.tar.gz", corpus)


def refused_extraction(archive: Path, tmp_path: Path, match: str) -> None:
    """Extraction of `archive` fails with `match` in the message and leaves neither target nor partial folder."""
    target = tmp_path / "out" / "AudioMNIST"
    with pytest.raises(PipelineError, match=match):
        extract_audiomnist(archive, target)
    assert not target.exists()
    assert not list(target.parent.glob(".AudioMNIST.partial-*"))


def test_good_archive_is_fetched_verified_and_only_data_extracted(server, archive, corpus, tmp_path):
    cache = tmp_path / "cache"
    data = fetch_audiomnist(cache, sha256_of(archive), server.url("archive.tar.gz"))
    assert data == cache / f"AudioMNIST-{AUDIOMNIST_COMMIT}"
    assert (data / META_FILE).is_file()
    assert sorted(p.name for p in data.iterdir() if p.is_dir()) == ["01", "02"]
    assert files_under(data) == files_under(corpus)
    extracted_names = {p.name for p in cache.rglob("*")}
    assert not extracted_names & {"README.md", "models", "x.py"}
    # A second call reuses the extracted folder: even with the archive gone, nothing is downloaded again.
    (cache / f"AudioMNIST-{AUDIOMNIST_COMMIT}.tar.gz").unlink()
    assert fetch_audiomnist(cache, sha256_of(archive), server.url("archive.tar.gz")) == data
    assert server.ranges == [None]


def test_wrong_checksum_is_refused_and_file_deleted(server, archive, tmp_path):
    destination = tmp_path / "dl" / "a.tar.gz"
    with pytest.raises(PipelineError, match="checksum mismatch") as error:
        fetch(server.url("archive.tar.gz"), destination, WRONG_SHA, timeout=5)
    assert sha256_of(archive) in str(error.value)
    assert not destination.exists()
    assert not destination.with_name("a.tar.gz.part").exists()


def test_unpinned_checksum_is_reported_and_file_kept(server, archive, tmp_path):
    destination = tmp_path / "dl" / "a.tar.gz"
    actual = sha256_of(archive)
    with pytest.raises(PipelineError, match="data.audiomnist_sha256") as error:
        fetch(server.url("archive.tar.gz"), destination, None, timeout=5)
    assert actual in str(error.value)
    assert destination.read_bytes() == archive.read_bytes()
    # Once pinned, the kept file is accepted without a second download.
    assert fetch(server.url("archive.tar.gz"), destination, actual, timeout=5) == destination
    assert server.ranges == [None]


@pytest.mark.parametrize(
    "name",
    # The absolute path points inside tmp_path so that a leak would be caught without touching /tmp itself.
    [f"{TOP}/data/../../evil.txt", "{tmp_path}/evil.txt"],
    ids=["climbs-out", "absolute"],
)
def test_member_leaving_target_is_refused(name, corpus, tmp_path):
    name = name.format(tmp_path=tmp_path)
    archive = build_archive(tmp_path / "a.tar.gz", corpus, extra=(member(name),))
    refused_extraction(archive, tmp_path, re.escape(repr(name)) + ".*would leave the target folder")
    assert not list(tmp_path.rglob("evil.txt"))


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE], ids=["symlink", "hardlink"])
def test_link_member_is_refused(kind, corpus, tmp_path):
    name = f"{TOP}/data/01/9_01_9.wav"
    archive = build_archive(tmp_path / "a.tar.gz", corpus, extra=(member(name, kind, "/etc/passwd"),))
    refused_extraction(archive, tmp_path, re.escape(repr(name)) + " is a link")


def test_partial_download_is_resumed(server, archive, tmp_path):
    destination = tmp_path / "dl" / "a.tar.gz"
    part = destination.with_name("a.tar.gz.part")
    part.parent.mkdir()
    whole = archive.read_bytes()
    half = len(whole) // 2
    part.write_bytes(whole[:half])
    assert fetch(server.url("archive.tar.gz"), destination, sha256_of(archive), timeout=5) == destination
    assert server.ranges == [f"bytes={half}-"]
    assert destination.read_bytes() == whole
    assert not part.exists()


def test_server_error_names_the_url(server, tmp_path):
    url = server.url("missing.tar.gz")
    destination = tmp_path / "dl" / "a.tar.gz"
    with pytest.raises(PipelineError, match=re.escape(url) + ".*404"):
        fetch(url, destination, WRONG_SHA, timeout=5)
    assert not destination.exists()


def test_archive_without_metadata_is_refused(corpus, tmp_path):
    archive = build_archive(tmp_path / "a.tar.gz", corpus, with_meta=False)
    refused_extraction(archive, tmp_path, re.escape(f"no data/{META_FILE}"))


def test_truncated_archive_is_refused(corpus, tmp_path):
    archive = build_archive(tmp_path / "a.tar.gz", corpus)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size * 3 // 5])
    refused_extraction(archive, tmp_path, "cannot extract")
