"""An OpenAI-compatible speech server as an engine: room for a better voice on the GPU PC.

``POST {url}`` with JSON ``{"model", "input", "voice", "response_format": "wav"}`` (plus
``"speed"`` when ``TTS_RATE`` is not 1) answers a WAV file. That is the OpenAI audio speech
API, which local servers such as Kokoro-FastAPI serve (``/v1/audio/speech``). The standard
library's urllib does the request, so this engine adds no dependency.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from .audio import Speech, from_wav, trim_silence
from .engines import WARM_UP_TEXT, nothing_to_say
from .errors import EngineUnavailable, SynthesisFailed

__all__ = ["HttpSynthesizer"]


class HttpSynthesizer:
    engine = "http"

    def __init__(
        self, url: str, voice: str, language: str, *, model: str = "tts-1", rate: float = 1.0, timeout_s: float = 30.0
    ) -> None:
        self.url, self.voice, self.language, self.model = url, voice, language, model
        self.rate, self.timeout_s = rate, timeout_s

    def _post(self, text: str) -> bytes:
        body: dict[str, object] = {"model": self.model, "input": text, "voice": self.voice, "response_format": "wav"}
        if self.rate != 1.0:
            body["speed"] = self.rate
        request = urllib.request.Request(
            self.url,
            data=json.dumps(body).encode("utf-8"),
            headers={"Content-Type": "application/json", "Accept": "audio/wav"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                data: bytes = response.read()
                return data
        except urllib.error.HTTPError as e:
            detail = e.read(300).decode("utf-8", "replace").strip()
            raise SynthesisFailed(f"the speech server {self.url} answered HTTP {e.code}: {detail or e.reason}") from e
        except TimeoutError as e:
            raise SynthesisFailed(f"the speech server {self.url} did not answer within {self.timeout_s:g} s") from e
        except (urllib.error.URLError, OSError) as e:
            raise SynthesisFailed(f"the speech server {self.url} cannot be reached: {e}") from e

    def synthesize(self, text: str) -> Speech:
        if nothing_to_say(text):
            raise SynthesisFailed(f"nothing to say in {text!r}")
        return trim_silence(from_wav(self._post(text), f"the speech server {self.url}"))

    def warm_up(self) -> None:
        try:
            self.synthesize(WARM_UP_TEXT.get(self.language, "Hola."))
        except SynthesisFailed as e:
            raise EngineUnavailable(f"{e} (voice {self.voice!r}, model {self.model!r}; is the server running?)") from e
