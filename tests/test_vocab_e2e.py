"""End to end: the eval speech through every real process (Silero, Whisper, the bundled
translation model, the recorder, the vocab service, the gateway), two idioms saved from what
was heard, and two study cards whose audio clips, transcribed again by Whisper, say the phrase."""

from __future__ import annotations

import asyncio
import json
import time
import unicodedata
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rapidfuzz.distance import Levenshtein

from habla.evaluation import load_manifest, normalise
from habla.replay import replay_pcm
from habla.supervisor import Runtime, running
from habla_ingest.adapters import decode_file
from habla_vocab.audio import decode_mp3

pytestmark = pytest.mark.slow

GAP = np.zeros(16000, dtype=np.int16)  # a second of silence between clips: one utterance each
# idioms of the database heard in the eval speech ("Hoy en día, las personas escriben ...",
# "... también le rindieron homenaje.")
WANTED = ("hoy en día", "rendir homenaje")


def call(rt: Runtime, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(
        rt.url + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Bearer {rt.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return int(r.status), r.read()


def plain(text: str) -> str:
    """Lower case, no accents or punctuation: what two transcripts of one phrase share."""
    decomposed = unicodedata.normalize("NFD", normalise(text))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def says(transcript: str, phrase: str) -> bool:
    """``phrase`` (as the live pipeline heard it) is in ``transcript``: some run of as many
    words is within one character edit in eight of it (Whisper hears "le rindieron" once,
    "les rendieron" the next time)."""
    words, heard = plain(phrase).split(), plain(transcript).split()
    target, allowed = " ".join(words), max(1, len(" ".join(words)) // 8)
    windows = (" ".join(heard[i : i + len(words)]) for i in range(len(heard) - len(words) + 1))
    return any(Levenshtein.distance(target, w) <= allowed for w in windows)


def test_two_saved_idioms_become_cards_whose_clips_say_the_phrase(tmp_path: Path, redis_url: str, pg_url: str) -> None:
    from habla_asr.adapters import FasterWhisperTranscriber
    from habla_asr.config import AsrConfig

    env = {"REDIS_URL": redis_url, "DATABASE_URL": pg_url, "HABLA_LEASE_MS": "3000"}
    audio = np.concatenate([part for clip in load_manifest() for part in (decode_file(clip.path), GAP)])
    with running(data_dir=tmp_path / "data", extra_env=env) as rt:  # every service, as `habla up` runs them
        res = asyncio.run(replay_pcm(rt.ws_url, rt.token, audio, title="eval speech", translations=True))
        detected = {e.data["canonical"]: e.data for e in res.of_kind("idiom.detected")}
        assert set(WANTED) <= set(detected), f"idioms detected: {sorted(detected)}"
        phrases = {canonical: detected[canonical]["phrase"] for canonical in WANTED}

        # the user taps Save on both idiom cards (from the transcript, as the history view does)
        for canonical in WANTED:
            idiom = detected[canonical]
            body = {
                "kind": "idiom",
                "text": canonical,
                "utterance_id": idiom["utterance_id"],
                "meaning": idiom["meaning"],
                "literal": idiom["literal"],
            }
            status, _ = call(rt, "POST", f"/api/sessions/{res.session_id}/terms", body)
            assert status == 202

        deadline = time.monotonic() + 120
        while True:
            items = json.loads(call(rt, "GET", "/api/vocab")[1])["items"]
            if len(items) == len(WANTED) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert sorted(i["canonical"] for i in items) == sorted(WANTED)
        due = json.loads(call(rt, "GET", "/api/vocab/due")[1])
        assert sorted(c["canonical"] for c in due["cards"]) == sorted(WANTED)  # both new, due today
        clips = {}
        translations = {e.data["utterance_id"]: e.data["translation"] for e in res.of_kind("translation.final")}
        for item in items:
            context = item["context"]
            idiom = detected[item["canonical"]]
            assert item["kind"] == "idiom" and item["meaning"] == idiom["meaning"]
            assert idiom["phrase"] in context["heard"]  # the sentence as heard
            assert context["translation"] == translations[idiom["utterance_id"]] != ""
            assert context["clip_url"], item
            status, mp3 = call(rt, "GET", context["clip_url"])
            assert status == 200 and mp3[:3] == b"ID3"
            clips[item["canonical"]] = decode_mp3(mp3)

    # each clip, transcribed on its own by the same Whisper model, says the phrase
    whisper = FasterWhisperTranscriber.from_config(AsrConfig.from_env())
    for canonical, pcm in clips.items():
        assert 1.0 < pcm.size / 16000 <= 10.5, (canonical, pcm.size / 16000)
        heard = whisper.transcribe(pcm, language="es", beam_size=5, partial=False).text
        print(f"\n{canonical}: {pcm.size / 16000:.1f} s clip, heard {heard!r}")
        assert says(heard, phrases[canonical]), (phrases[canonical], heard)
