"""`habla idioms`, `habla translate`: the commands as a user runs them (real database and model)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from habla.cli import main as cli


def test_idioms_prints_database_matches_as_json_lines(tmp_path: Path) -> None:
    lines = tmp_path / "lines.txt"
    lines.write_text("Ponte las pilas, que el examen es mañana.\n\nHoy hace sol.\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["idioms", "--file", str(lines)])
    assert result.exit_code == 0, result.output
    first, second = (json.loads(x) for x in result.output.splitlines())
    [hit] = first["idioms"]
    assert hit["canonical"] == "ponerse las pilas" and hit["phrase"] == "Ponte las pilas"
    assert first["text"][hit["start"] : hit["end"]] == hit["phrase"] and hit["meaning"] and hit["literal"]
    assert second == {"text": "Hoy hace sol.", "idioms": []}


def test_idioms_without_input_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["idioms"])
    assert result.exit_code == 2 and "--file" in result.output


def test_translate_prints_the_final_translation_result() -> None:
    result = CliRunner().invoke(cli, ["translate", "Me importa un pepino lo que digan."])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(out) >= {"source", "corrected", "corrections", "translation", "idioms", "status"}
    assert out["status"] == "ok" and "cucumber" not in out["translation"].lower()
    [idiom] = out["idioms"]
    assert (
        idiom["canonical"] == "importar un pepino"
        and out["corrected"][idiom["start"] : idiom["end"]] == idiom["phrase"]
    )


def test_translate_an_unreadable_file_says_so(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    result = CliRunner().invoke(cli, ["translate", "--file", str(bad)])
    assert result.exit_code != 0 and "cannot read" in result.output


def test_retranslate_an_unknown_session_says_so(tmp_path: Path, redis_url: str, pg_url: str) -> None:
    env = {"REDIS_URL": redis_url, "DATABASE_URL": pg_url}
    result = CliRunner().invoke(cli, ["retranslate", "no-such-session", "--data-dir", str(tmp_path)], env=env)
    assert result.exit_code != 0 and "no session 'no-such-session'" in result.output
