"""build_chat_model and the backends' error paths: every failure names its fix.

No generation here except through the session's shared fake Ollama server; the contract
tests (tests/contract) cover what the backends answer.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from habla_common.errors import ConfigError
from habla_translate.bundled import BUNDLED
from habla_translate.errors import BackendError, ModelUnavailable
from habla_translate.llm import OLLAMA_BUNDLED_EQUIVALENT, Message, OllamaChat, build_chat_model

HELLO = [Message("user", "Hola")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server that accepts connections and never answers (a hung Ollama)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def test_an_unknown_backend_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"TRANSLATE_BACKEND.*llamacpp, ollama.*'vllm'"):
        build_chat_model("vllm", BUNDLED, cache_dir=tmp_path)


def test_a_missing_gguf_path_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "models" / "nope.gguf"
    with pytest.raises(ModelUnavailable, match=f"no GGUF file at {missing}"):
        build_chat_model("llamacpp", str(missing), cache_dir=tmp_path)


def test_a_file_that_is_not_a_gguf_cannot_load(tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"this is not a model" * 100)
    with pytest.raises(ModelUnavailable, match=f"cannot load {junk}"):
        build_chat_model("llamacpp", str(junk), cache_dir=tmp_path)


def test_ollama_backend_maps_the_bundled_name_to_the_same_weights(tmp_path: Path) -> None:
    model = build_chat_model("ollama", BUNDLED, cache_dir=tmp_path, ollama_url="http://127.0.0.1:9")
    assert isinstance(model, OllamaChat) and model.name == OLLAMA_BUNDLED_EQUIVALENT
    model.close()
    other = build_chat_model(" Ollama ", "llama3.1:8b", cache_dir=tmp_path)
    assert isinstance(other, OllamaChat) and other.name == "llama3.1:8b"
    other.close()


def test_ollama_not_running_says_how_to_fix_it() -> None:
    chat = OllamaChat("qwen2.5:7b", host=f"http://127.0.0.1:{_free_port()}", timeout_s=5)
    with pytest.raises(BackendError, match=r"cannot reach Ollama at .*Is Ollama running.*OLLAMA_URL") as e:
        chat.chat(HELLO, max_tokens=1)
    assert "ollama pull qwen2.5:7b" in str(e.value)
    with pytest.raises(BackendError):
        chat.warm_up()
    chat.close()


def test_a_hung_ollama_times_out_as_backend_error(silent_server: str) -> None:
    chat = OllamaChat("qwen2.5:7b", host=silent_server, timeout_s=0.3)
    with pytest.raises(BackendError, match=r"did not answer within 0\.3 s"):
        chat.chat(HELLO, max_tokens=1)
    chat.close()


@pytest.mark.slow
def test_a_model_ollama_lacks_says_to_pull_it(fake_ollama: Any) -> None:
    chat = OllamaChat("mistral:7b", host=fake_ollama.url)
    with pytest.raises(BackendError, match=r"model not found: run `ollama pull mistral:7b`"):
        chat.chat(HELLO, max_tokens=1)
    chat.close()


def test_caller_mistakes_are_value_errors_before_any_call() -> None:
    chat = OllamaChat("qwen2.5:7b", host=f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(ValueError, match="role"):
        Message("narrator", "x")
    with pytest.raises(ValueError, match="at least one message"):
        chat.chat([])
    with pytest.raises(ValueError, match="max_tokens"):
        chat.chat(HELLO, max_tokens=0)
    with pytest.raises(ValueError, match="cannot be combined"):
        chat.chat(HELLO, schema={"type": "object"}, prefill="{")
    chat.close()
