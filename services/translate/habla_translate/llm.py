"""Chat-model backends: one small interface, llama.cpp in-process and Ollama behind it.

The translate service talks to an LLM only through :class:`ChatModel`. Two backends:

* :class:`LlamaCppChat` runs a GGUF file in this process with llama-cpp-python. It is the
  embedded default (the bundled 1.5B model, see :mod:`.bundled`): nothing to install or run
  besides the Python packages, which matters on the 2-core box that has no Ollama binary.
* :class:`OllamaChat` calls an Ollama server: the choice on the user's PC, where bigger
  models are pulled by name and may run on a GPU.

Both give the same semantics, checked by the contract tests: greedy decoding
(temperature 0), optional JSON-schema-constrained output, an optional *prefill* that the
answer is forced to start with (only the continuation is returned), a token budget whose
exhaustion is reported as ``finish_reason == "length"``, and token counts for metrics.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, Protocol

from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

from habla_common.errors import ConfigError

from .bundled import BUNDLED, assemble_bundled_gguf
from .errors import BackendError, ModelUnavailable

__all__ = [
    "BACKENDS",
    "DEFAULT_OLLAMA_URL",
    "OLLAMA_BUNDLED_EQUIVALENT",
    "ROLES",
    "ChatModel",
    "Completion",
    "LlamaCppChat",
    "Message",
    "OllamaChat",
    "build_chat_model",
]

ROLES = ("system", "user", "assistant")
BACKENDS = ("llamacpp", "ollama")
DEFAULT_OLLAMA_URL = "http://localhost:11434"
# The same weights as the bundled GGUF, as Ollama's library names them.
OLLAMA_BUNDLED_EQUIVALENT = "qwen2.5-coder:1.5b"
_WARM_UP = (("user", "Hi"),)


@dataclass(frozen=True)
class Message:
    role: str  # system | user | assistant
    content: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"message role must be one of {', '.join(ROLES)}, got {self.role!r}")


@dataclass(frozen=True)
class Completion:
    text: str  # the generated continuation only, never the prefill
    prompt_tokens: int
    completion_tokens: int
    elapsed_s: float
    finish_reason: str  # "stop" (end of turn or a stop string) | "length" (max_tokens reached)


class ChatModel(Protocol):
    """A chat LLM as the translate service needs it (see the module docstring)."""

    name: str

    def chat(
        self,
        messages: Sequence[Message],
        *,
        schema: Mapping[str, Any] | None = None,
        prefill: str = "",
        max_tokens: int = 256,
        stop: Sequence[str] = (),
    ) -> Completion: ...

    def warm_up(self) -> None: ...

    def close(self) -> None: ...


def _check_request(
    messages: Sequence[Message], schema: Mapping[str, Any] | None, prefill: str, max_tokens: int
) -> None:
    """Mistakes of the caller, not of the backend: ``ValueError``, never retried."""
    if not messages:
        raise ValueError("chat() needs at least one message")
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    if schema is not None and prefill:
        # A grammar constrains the answer from its first character; a prefill would have
        # to be valid JSON grammar state, which neither backend supports.
        raise ValueError("schema and prefill cannot be combined")


# --------------------------------------------------------------------------- llama.cpp


def _raise_from_template(message: str) -> NoReturn:
    raise ValueError(f"the model's chat template refused the messages: {message}")


def _compile_template(source: str) -> Any:
    """The GGUF's own Jinja chat template, in the environment Hugging Face renders it in
    (sandboxed, trim/lstrip blocks, loop controls, ``raise_exception``), so a model whose
    template we never saw is prompted exactly the way it was trained."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.globals["raise_exception"] = _raise_from_template
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(source)


def _load_llama(path: Path, n_threads: int, n_ctx: int, seed: int) -> Any:
    try:
        from llama_cpp import Llama
    except ImportError as e:
        raise ModelUnavailable(
            f"the llamacpp backend needs llama-cpp-python==0.3.36 ({e}): pip install llama-cpp-python==0.3.36 "
            "(builds from source, ~10 min on 2 cores), or use TRANSLATE_BACKEND=ollama"
        ) from e
    try:
        # verbose=False: no llama.cpp log lines on stderr (only errors), quiet load.
        return Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            seed=seed,
            verbose=False,
        )
    except (ValueError, RuntimeError, OSError) as e:
        raise ModelUnavailable(f"llama.cpp cannot load {path}: {e}. Is it a complete GGUF file?") from e


class LlamaCppChat:
    """A GGUF model run in-process by llama.cpp; loaded once, calls serialised by a lock.

    The prompt is rendered here from the model's own chat template and sent as tokens, so
    the prefill can be appended after the assistant header. The same ``Llama`` object is
    reused and never reset: llama.cpp then skips re-evaluating the longest token prefix a
    call shares with the previous one, which is why callers put the stable part of the
    prompt (system prompt, glossary) first and the per-utterance text last.

    Caveat: like llama-cpp-python's own chat handlers, the rendered prompt is tokenized
    with special tokens enabled, so message text spelling a control token (``<|im_end|>``)
    would act as one. Transcribed speech does not.
    """

    def __init__(
        self, model_path: str | Path, *, n_threads: int = 2, n_ctx: int = 4096, name: str = "", seed: int = 0
    ) -> None:
        path = Path(model_path)
        self.name = name or path.stem
        self.n_ctx = n_ctx
        self._seed = seed
        self._lock = threading.Lock()
        self._grammars: dict[str, Any] = {}
        started = time.perf_counter()
        self._llama: Any = _load_llama(path, n_threads, n_ctx, seed)
        self.load_s = time.perf_counter() - started
        source = self._llama.metadata.get("tokenizer.chat_template")
        if not source:
            self._llama.close()
            raise ModelUnavailable(f"{path} has no chat template (tokenizer.chat_template): use an instruct model")
        self._template = _compile_template(source)
        self._specials = {"bos_token": self._token_text(self._llama.token_bos())}
        self._specials["eos_token"] = self._token_text(self._llama.token_eos())

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return bytes(self._llama.detokenize([token], special=True)).decode("utf-8", errors="replace")

    def render_prompt(self, messages: Sequence[Message], prefill: str = "") -> str:
        """The exact text the model sees: template with the generation prompt, then prefill."""
        chat = [{"role": m.role, "content": m.content} for m in messages]
        rendered = self._template.render(messages=chat, add_generation_prompt=True, **self._specials)
        return str(rendered) + prefill

    def _grammar(self, schema: Mapping[str, Any]) -> Any:
        """The compiled grammar of ``schema``, converted once per distinct schema. Keys are not
        sorted: the grammar emits properties in the schema's order, which callers choose."""
        key = json.dumps(schema)
        if key not in self._grammars:
            from llama_cpp.llama_grammar import LlamaGrammar

            self._grammars[key] = LlamaGrammar.from_json_schema(key, verbose=False)
        return self._grammars[key]

    def chat(
        self,
        messages: Sequence[Message],
        *,
        schema: Mapping[str, Any] | None = None,
        prefill: str = "",
        max_tokens: int = 256,
        stop: Sequence[str] = (),
    ) -> Completion:
        _check_request(messages, schema, prefill, max_tokens)
        prompt = self.render_prompt(messages, prefill)
        with self._lock:
            if self._llama is None:
                raise BackendError(f"{self.name}: the model was closed")
            tokens = self._llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
            if len(tokens) + max_tokens > self.n_ctx:
                raise BackendError(
                    f"{self.name}: prompt of {len(tokens)} tokens + max_tokens {max_tokens} exceed the "
                    f"context of {self.n_ctx} tokens: shorten the prompt or raise TRANSLATE_CONTEXT_TOKENS"
                )
            grammar = self._grammar(schema) if schema is not None else None
            started = time.perf_counter()
            try:
                out = self._llama.create_completion(
                    tokens, max_tokens=max_tokens, temperature=0.0, seed=self._seed, stop=list(stop), grammar=grammar
                )
            except (RuntimeError, ValueError) as e:
                raise BackendError(f"{self.name}: llama.cpp failed: {e}") from e
            elapsed = time.perf_counter() - started
        choice, usage = out["choices"][0], out["usage"]
        return Completion(
            text=choice["text"],
            prompt_tokens=int(usage["prompt_tokens"]),
            completion_tokens=int(usage["completion_tokens"]),
            elapsed_s=elapsed,
            finish_reason="length" if choice["finish_reason"] == "length" else "stop",
        )

    def warm_up(self) -> None:
        """One tiny completion: the first call after loading is many times slower than the rest."""
        self.chat([Message(role, text) for role, text in _WARM_UP], max_tokens=1)

    def close(self) -> None:
        with self._lock:
            if self._llama is not None:
                self._llama.close()
                self._llama = None


# --------------------------------------------------------------------------- Ollama


class OllamaChat:
    """A model served by Ollama, through the official ``ollama`` client.

    A prefill is sent as a trailing assistant message: Ollama then continues that message
    and returns only the continuation. ``keep_alive`` keeps the model loaded between
    utterances (Ollama unloads idle models after 5 minutes by default).
    """

    def __init__(
        self, model: str, *, host: str = DEFAULT_OLLAMA_URL, timeout_s: float = 60.0, keep_alive: str = "30m"
    ) -> None:
        try:
            import ollama
        except ImportError as e:
            raise ModelUnavailable(f"the ollama backend needs the client: pip install ollama==0.6.3 ({e})") from e
        self.name = model
        self.model = model
        self.host = host
        self.timeout_s = timeout_s
        self.keep_alive = keep_alive
        self._client: Any = ollama.Client(host=host, timeout=timeout_s)

    def chat(
        self,
        messages: Sequence[Message],
        *,
        schema: Mapping[str, Any] | None = None,
        prefill: str = "",
        max_tokens: int = 256,
        stop: Sequence[str] = (),
    ) -> Completion:
        _check_request(messages, schema, prefill, max_tokens)
        payload = [{"role": m.role, "content": m.content} for m in messages]
        if prefill:
            payload.append({"role": "assistant", "content": prefill})
        options: dict[str, Any] = {"temperature": 0, "num_predict": max_tokens}
        if stop:
            options["stop"] = list(stop)
        started = time.perf_counter()
        response = self._call(
            model=self.model,
            messages=payload,
            format=dict(schema) if schema is not None else None,
            options=options,
            keep_alive=self.keep_alive,
            stream=False,
        )
        return Completion(
            text=response.message.content or "",
            prompt_tokens=response.prompt_eval_count or 0,
            completion_tokens=response.eval_count or 0,
            elapsed_s=time.perf_counter() - started,
            finish_reason="length" if response.done_reason == "length" else "stop",
        )

    def _call(self, **request: Any) -> Any:
        """``client.chat(**request)`` with every failure turned into a :class:`BackendError`
        that says what to check."""
        import httpx
        import ollama

        where = f"Ollama at {self.host} (model {self.model!r})"
        try:
            return self._client.chat(**request)
        except ollama.ResponseError as e:
            if e.status_code == 404 or "not found" in str(e.error).lower():
                raise BackendError(f"{where}: model not found: run `ollama pull {self.model}` there") from e
            raise BackendError(f"{where} refused the request (HTTP {e.status_code}): {e.error}") from e
        except httpx.TimeoutException as e:
            raise BackendError(
                f"{where} did not answer within {self.timeout_s:g} s: it may still be loading the model, "
                "or the machine is overloaded; raise TRANSLATE_TIMEOUT_S or use a smaller model"
            ) from e
        except (ConnectionError, httpx.TransportError) as e:
            raise BackendError(
                f"cannot reach {where}: {e}. Is Ollama running (`ollama serve`) and is OLLAMA_URL right? "
                f"Is the model pulled (`ollama pull {self.model}`)?"
            ) from e
        except ValueError as e:  # an answer that is not Ollama's JSON (pydantic, json)
            raise BackendError(f"{where} sent an unexpected answer: {e}. Is OLLAMA_URL an Ollama server?") from e

    def warm_up(self) -> None:
        """A one-token request: Ollama loads the model into memory on its first use."""
        self.chat([Message(role, text) for role, text in _WARM_UP], max_tokens=1)

    def close(self) -> None:
        self._client.close()


# --------------------------------------------------------------------------- factory


def build_chat_model(
    backend: str,
    model: str,
    *,
    cache_dir: Path,
    ollama_url: str = DEFAULT_OLLAMA_URL,
    threads: int = 2,
    n_ctx: int = 4096,
    timeout_s: float = 60.0,
) -> ChatModel:
    """The configured backend (``TRANSLATE_BACKEND``) for ``model`` (``TRANSLATE_MODEL``).

    ``llamacpp``: ``model`` is :data:`BUNDLED` (assembled from the part packages into
    ``cache_dir``) or the path of a GGUF file. ``ollama``: ``model`` is an Ollama model
    name; :data:`BUNDLED` means the same weights in Ollama's library.
    """
    kind = backend.strip().lower()
    if kind == "llamacpp":
        if model == BUNDLED:
            return LlamaCppChat(assemble_bundled_gguf(cache_dir), n_threads=threads, n_ctx=n_ctx, name=BUNDLED)
        path = Path(model).expanduser()
        if not path.is_file():
            raise ModelUnavailable(
                f"TRANSLATE_MODEL={model!r}: no GGUF file at {path}. Give the path of a .gguf file, "
                f"or {BUNDLED} for the bundled model, or use TRANSLATE_BACKEND=ollama with a model name"
            )
        return LlamaCppChat(path, n_threads=threads, n_ctx=n_ctx, name=path.stem)
    if kind == "ollama":
        name = OLLAMA_BUNDLED_EQUIVALENT if model == BUNDLED else model
        return OllamaChat(name, host=ollama_url, timeout_s=timeout_s)
    raise ConfigError(f"TRANSLATE_BACKEND must be one of {', '.join(BACKENDS)}, got {backend!r}")
