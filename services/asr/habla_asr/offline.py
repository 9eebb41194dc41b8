"""Whole-file transcription with the service's model and settings, outside the live path.

``python -m habla_asr.offline FILE [FILE ...] [--language es]`` prints one line per file: the
text Whisper hears in the whole recording at once (30 s windows, the final beam size). It is
the baseline the live pipeline is held to (``habla bench --compare``): the same model given
all the audio and all the time it wants.
"""

from __future__ import annotations

import argparse
import sys

from .adapters import FasterWhisperTranscriber
from .config import AsrConfig
from .domain import SAMPLE_RATE

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m habla_asr.offline", description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+", help="recordings (wav, mp3, m4a, ogg, webm)")
    ap.add_argument("--language", default="es", help="spoken language, or 'auto' to detect (default es)")
    args = ap.parse_args(argv)
    from faster_whisper import decode_audio

    config = AsrConfig.from_env()
    transcriber = FasterWhisperTranscriber.from_config(config)
    language = None if args.language == "auto" else args.language
    for path in args.files:
        try:
            audio = decode_audio(path, sampling_rate=SAMPLE_RATE)
        except Exception as e:  # noqa: BLE001 - PyAV's errors vary by container and codec
            print(f"cannot read {path}: {e}", file=sys.stderr)
            return 2
        heard = transcriber.transcribe(audio, language=language, beam_size=config.beam_size, partial=False)
        print(heard.text.strip(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
