"""`habla voices`: enrol a voice from a recording, list it, forget it (real Redis, Postgres,
speaker encoder and recorder, as a user runs the commands)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from habla.cli import main as cli
from habla.evaluation import default_speech_dir

pytestmark = pytest.mark.slow


def test_enrol_list_and_forget_a_voice(tmp_path: Path, redis_url: str, pg_url: str) -> None:
    env = {"REDIS_URL": redis_url, "DATABASE_URL": pg_url}
    data = ["--data-dir", str(tmp_path)]
    clip = default_speech_dir() / "fleurs-es-007.wav"
    runner = CliRunner()
    enrolled = runner.invoke(cli, ["voices", "enroll", str(clip), "--name", "Me", "--me", *data], env=env)
    assert enrolled.exit_code == 0, enrolled.output
    voiceprint_id = enrolled.stdout.strip().splitlines()[-1]
    assert "enrolled your own voice as 'Me'" in enrolled.output

    listed = runner.invoke(cli, ["voices", "list", *data], env=env)
    assert listed.exit_code == 0, listed.output
    assert voiceprint_id in listed.output and "Me" in listed.output and "yes" in listed.output

    forgot = runner.invoke(cli, ["voices", "forget", voiceprint_id, *data], env=env)
    assert forgot.exit_code == 0, forgot.output
    listed = runner.invoke(cli, ["voices", "list", *data], env=env)
    assert listed.exit_code == 0 and voiceprint_id not in listed.output and "no stored voices" in listed.output

    again = runner.invoke(cli, ["voices", "forget", voiceprint_id, *data], env=env)
    assert again.exit_code == 1 and f"no stored voice {voiceprint_id!r}" in again.output


def test_enrolling_garbage_or_silence_says_why(tmp_path: Path, redis_url: str, pg_url: str) -> None:
    env = {"REDIS_URL": redis_url, "DATABASE_URL": pg_url}
    garbage = tmp_path / "notes.wav"
    garbage.write_bytes(b"RIFF\x00\x00garbage, not audio")
    result = CliRunner().invoke(cli, ["voices", "enroll", str(garbage), "--name", "Ana"], env=env)
    assert result.exit_code == 1 and "cannot decode" in result.output
    silence = tmp_path / "silence.wav"
    import wave

    with wave.open(str(silence), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(b"\x00\x00" * 16000 * 5)
    result = CliRunner().invoke(cli, ["voices", "enroll", str(silence), "--name", "Ana"], env=env)
    assert result.exit_code == 1 and "0.0 s of speech" in result.output
