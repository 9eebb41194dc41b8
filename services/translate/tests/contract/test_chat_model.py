"""The ChatModel contract, run against every backend with the real bundled model behind it.

:class:`ChatModelContract` holds the tests; each backend subclasses it with a
``create_model()`` factory. Both backends end in the same llama.cpp model (the Ollama one
through a fake Ollama server, since the Ollama binary cannot be installed here), so the
differences the tests can catch are in our code: prompt rendering, prefill, schema, stop,
token budget and count mapping. Each generation costs 0.3-3 s on 2 cores: few tests,
small ``max_tokens``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from habla_translate.llm import OLLAMA_BUNDLED_EQUIVALENT, ChatModel, LlamaCppChat, Message, OllamaChat

pytestmark = pytest.mark.slow

SYSTEM = Message(
    "system",
    "You are an interpreter. Translate the user's text between Spanish and English. Answer with the translation only.",
)
GREETING = Message("user", "Translate to English: Buenos días, ¿cómo estás?")
SCHEMA = {
    "type": "object",
    "properties": {"english": {"type": "string"}, "source_language": {"type": "string", "enum": ["es", "en"]}},
    "required": ["english", "source_language"],
}


class ChatModelContract:
    """What every :class:`ChatModel` must do. Not collected itself (no ``Test`` prefix)."""

    def create_model(self) -> ChatModel:
        raise NotImplementedError

    def release(self, model: ChatModel) -> None:
        """Undo ``create_model``; a shared model is left open."""

    @pytest.fixture
    def model(self) -> Iterator[ChatModel]:
        model = self.create_model()
        yield model
        self.release(model)

    def test_translates_a_plain_request(self, model: ChatModel) -> None:
        done = model.chat([SYSTEM, GREETING], max_tokens=32)
        assert "morning" in done.text.lower() or "good" in done.text.lower(), done
        assert done.finish_reason == "stop"
        assert done.prompt_tokens > 10 and 0 < done.completion_tokens <= 32
        assert done.elapsed_s > 0

    def test_a_schema_constrains_the_answer_to_that_json(self, model: ChatModel) -> None:
        done = model.chat([SYSTEM, GREETING], schema=SCHEMA, max_tokens=64)
        assert done.finish_reason == "stop", done
        answer = json.loads(done.text)
        assert isinstance(answer, dict) and {"english", "source_language"} <= answer.keys(), answer
        assert answer["source_language"] in ("es", "en")

    def test_a_prefill_is_continued_not_repeated(self, model: ChatModel) -> None:
        done = model.chat([SYSTEM, GREETING], prefill="Good morning", max_tokens=16)
        assert "good morning" not in done.text.lower(), done
        assert "how" in done.text.lower(), done

    def test_max_tokens_cuts_with_finish_reason_length(self, model: ChatModel) -> None:
        long = Message("user", "Translate to English: " + "El perro corre por el parque todas las mañanas. " * 3)
        done = model.chat([SYSTEM, long], max_tokens=3)
        assert done.finish_reason == "length", done
        assert 0 < done.completion_tokens <= 3 and done.text

    def test_a_stop_string_ends_the_answer_without_it(self, model: ChatModel) -> None:
        count = Message("user", "Count from 1 to 10, separated by commas.")
        done = model.chat([count], prefill="1, 2, 3,", stop=["6"], max_tokens=24)
        assert done.finish_reason == "stop", done
        assert "6" not in done.text and "5" in done.text, done

    def test_warm_up_then_chat(self, model: ChatModel) -> None:
        model.warm_up()
        assert model.chat([GREETING], max_tokens=2).completion_tokens > 0


class TestLlamaCppChat(ChatModelContract):
    @pytest.fixture(autouse=True)
    def _shared(self, bundled_chat: LlamaCppChat) -> None:
        self.shared = bundled_chat

    def create_model(self) -> ChatModel:
        return self.shared

    def test_prompt_comes_from_the_models_own_template(self) -> None:
        prompt = self.shared.render_prompt([SYSTEM, GREETING], prefill="Good")
        assert prompt.startswith("<|im_start|>system\nYou are an interpreter.")
        assert prompt.endswith("¿cómo estás?<|im_end|>\n<|im_start|>assistant\nGood")


class TestOllamaChatOnFakeServer(ChatModelContract):
    @pytest.fixture(autouse=True)
    def _server(self, fake_ollama: Any) -> None:
        self.server = fake_ollama

    def create_model(self) -> ChatModel:
        return OllamaChat(OLLAMA_BUNDLED_EQUIVALENT, host=self.server.url, timeout_s=120)

    def release(self, model: ChatModel) -> None:
        model.close()

    def test_sends_what_ollama_expects(self, model: ChatModel) -> None:
        model.chat([SYSTEM, GREETING], prefill="Good", stop=["\n"], max_tokens=2)
        sent = self.server.requests[-1]
        assert sent["model"] == OLLAMA_BUNDLED_EQUIVALENT and sent["stream"] is False
        assert sent["keep_alive"] == "30m"
        assert sent["options"] == {"temperature": 0, "num_predict": 2, "stop": ["\n"]}
        assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant"]
        assert sent["messages"][-1]["content"] == "Good"
        assert "format" not in sent or sent["format"] is None
