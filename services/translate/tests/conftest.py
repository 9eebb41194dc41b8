"""Shared fixtures: the real bundled LLM, assembled and loaded ONCE per test session.

The bundled GGUF (1.1 GB) is assembled into the real cache (``HABLA_CACHE_DIR`` or
``~/.cache/habla``), as ``habla up`` would, so only the first session on a machine pays for
the copy; later sessions only verify it. Loading the model costs seconds and ~1.9 GB of
memory, so every test file shares the one ``bundled_chat`` instance: tests must not
close it.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from habla_translate.bundled import BUNDLED, assemble_bundled_gguf, default_cache_dir
from habla_translate.config import TranslateConfig
from habla_translate.idioms import IdiomDatabase
from habla_translate.interpreter import Interpreter
from habla_translate.llm import OLLAMA_BUNDLED_EQUIVALENT, LlamaCppChat
from habla_translate.main import build_interpreter


def _load_helper(name: str) -> ModuleType:
    """Import a helper module that sits next to this file.

    The repository runs pytest with ``--import-mode=importlib`` and no ``__init__.py`` in
    test folders (several services have a ``tests`` folder), so test helpers are not on
    ``sys.path``; load them by path under a name no other service uses.
    """
    spec = importlib.util.spec_from_file_location(
        f"habla_translate_tests_{name}", Path(__file__).with_name(f"{name}.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


fake_ollama_module = _load_helper("fake_ollama")


@pytest.fixture(scope="session")
def bundled_gguf() -> Path:
    """The bundled model's GGUF in the real cache, assembled on the first session only."""
    return assemble_bundled_gguf(default_cache_dir())


@pytest.fixture(scope="session")
def bundled_chat(bundled_gguf: Path) -> Iterator[LlamaCppChat]:
    """The real bundled Qwen2.5-Coder-1.5B (2 threads), loaded and warmed up once."""
    chat = LlamaCppChat(bundled_gguf, n_threads=2, name=BUNDLED)
    chat.warm_up()
    yield chat
    chat.close()


@pytest.fixture(scope="session")
def fake_ollama(bundled_chat: LlamaCppChat) -> Iterator[object]:
    """A fake Ollama server (see fake_ollama.py) answering with ``bundled_chat``; it serves
    the model name :data:`OLLAMA_BUNDLED_EQUIVALENT`."""
    with fake_ollama_module.FakeOllamaServer(bundled_chat, [OLLAMA_BUNDLED_EQUIVALENT]) as server:
        yield server


@pytest.fixture(scope="session")
def idiom_db() -> IdiomDatabase:
    """The packaged idiom database, loaded once."""
    return IdiomDatabase.load()


@pytest.fixture(scope="session")
def interpreter(bundled_chat: LlamaCppChat, idiom_db: IdiomDatabase) -> Interpreter:
    """The service's translation path on the real model, database, guard and fallback."""
    return build_interpreter(TranslateConfig(), chat=bundled_chat, idioms=idiom_db, warm_up=True)
