"""Exports of the vocabulary: an Anki package (.apkg) and CSV.

The Anki note type and deck have fixed ids, and every note's GUID derives from its item
id, so importing a newer export into Anki updates the notes already there (new meaning,
better translation) instead of adding duplicates, and leaves their review history and
schedule alone. Each note carries the item's clip as an MP3 in the package's media and
plays it on the front of the card.

The card shows an item's first context that has audio (else its first context): the
sentence as heard, its translation, who said it and in which session.
"""

from __future__ import annotations

import csv
import html
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import genanki

from .domain import BAND_LABELS
from .errors import ExportFailed
from .store import Context, Item, VocabStore

__all__ = [
    "ANKI_DECK_ID",
    "ANKI_MODEL_ID",
    "CSV_COLUMNS",
    "ExportResult",
    "Progress",
    "export_apkg",
    "export_csv",
    "note_guid",
]

# Fixed forever: Anki recognises the note type and the deck by these ids.
ANKI_MODEL_ID = 1_730_516_101
ANKI_DECK_ID = 1_730_516_102
DECK_NAME = "Habla vocabulary"

FIELDS = (
    "Canonical",
    "Sentence",
    "Audio",
    "Meaning",
    "Literal",
    "Translation",
    "Kind",
    "Speaker",
    "Session",
    "Band",
    "ItemId",
)

_FRONT = """<div class="canonical">{{Canonical}}</div>
<div class="sentence">{{Sentence}}</div>
{{Audio}}"""
_BACK = """{{FrontSide}}
<hr id="answer">
<div class="meaning">{{Meaning}}</div>
{{#Literal}}<div class="literal">literally: {{Literal}}</div>{{/Literal}}
<div class="translation">{{Translation}}</div>
<div class="meta">{{Kind}} · {{Band}}{{#Speaker}} · {{Speaker}}{{/Speaker}} · {{Session}}</div>"""
_CSS = """.card { font-family: sans-serif; font-size: 20px; text-align: center; }
.canonical { font-size: 28px; font-weight: bold; }
.sentence { margin-top: 12px; font-style: italic; }
.meaning { font-size: 24px; }
.literal, .meta { color: #777; font-size: 14px; margin-top: 8px; }
.translation { margin-top: 12px; }"""

CSV_COLUMNS = (
    "item_id",
    "canonical",
    "kind",
    "language",
    "meaning",
    "literal",
    "sentence",
    "translation",
    "speaker",
    "session_id",
    "first_saved_at",
    "contexts",
    "band",
    "zipf",
    "reviews",
    "ease",
    "interval_days",
    "due_at",
)


Progress = Callable[[int, int], None]
"""``progress(done, total)``: called with ``(0, total)`` once the items are read, then after each item."""


@dataclass(frozen=True)
class ExportResult:
    path: Path
    items: int
    clips: int


def note_guid(item_id: str) -> str:
    """The Anki note GUID of an item: the same in every export."""
    return str(genanki.guid_for("habla.vocab", item_id))


def _model() -> genanki.Model:
    return genanki.Model(
        ANKI_MODEL_ID,
        "Habla vocabulary",
        fields=[{"name": f} for f in FIELDS],
        templates=[{"name": "Heard → meaning", "qfmt": _FRONT, "afmt": _BACK}],
        css=_CSS,
    )


def _shown(contexts: list[Context]) -> Context | None:
    return next((c for c in contexts if c.clip), contexts[0] if contexts else None)


def _clip_name(context: Context) -> str:
    return f"habla-{context.context_id}.{context.clip_format or 'mp3'}"


def _note(model: genanki.Model, item: Item, context: Context | None) -> genanki.Note:
    e = html.escape
    audio = f"[sound:{_clip_name(context)}]" if context and context.clip else ""
    fields = [
        e(item.canonical),
        e(context.heard if context else ""),
        audio,
        e(item.meaning),
        e(item.literal),
        e(context.translation if context else ""),
        e(item.item_kind),
        e((context.speaker_name or context.speaker or "") if context else ""),
        e(context.session_id if context else ""),
        e(BAND_LABELS.get(item.band, "")),
        e(item.item_id),
    ]
    return genanki.Note(model=model, fields=fields, guid=note_guid(item.item_id))


def export_apkg(store: VocabStore, path: Path, progress: Progress | None = None) -> ExportResult:
    """Write every live item to an Anki package at ``path``."""
    model = _model()
    deck = genanki.Deck(ANKI_DECK_ID, DECK_NAME)
    items = store.items()
    if progress is not None:
        progress(0, len(items))
    with tempfile.TemporaryDirectory(prefix="habla-apkg-") as tmp:
        media: list[str] = []
        for n, item in enumerate(items, 1):
            context = _shown(store.contexts(item.item_id))
            if context is not None and context.clip:
                clip_path = Path(tmp) / _clip_name(context)
                clip_path.write_bytes(context.clip)
                media.append(str(clip_path))
            deck.add_note(_note(model, item, context))
            if progress is not None:
                progress(n, len(items))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            genanki.Package(deck, media_files=media).write_to_file(str(path))
        except OSError as e:
            raise ExportFailed(f"cannot write the Anki package to {path}: {e}") from e
    return ExportResult(path, len(items), len(media))


def export_csv(store: VocabStore, path: Path, progress: Progress | None = None) -> ExportResult:
    """Write one row per live item (UTF-8, header first) to ``path``."""
    items = store.items()
    if progress is not None:
        progress(0, len(items))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(CSV_COLUMNS)
            for n, item in enumerate(items, 1):
                context = _shown(store.contexts(item.item_id))
                writer.writerow(
                    [
                        item.item_id,
                        item.canonical,
                        item.item_kind,
                        item.language,
                        item.meaning,
                        item.literal,
                        context.heard if context else "",
                        context.translation if context else "",
                        (context.speaker_name or context.speaker or "") if context else "",
                        context.session_id if context else "",
                        item.first_saved_at.isoformat(),
                        item.contexts,
                        item.band,
                        item.zipf,
                        item.reviews,
                        item.ease,
                        item.interval_days,
                        item.due_at.isoformat(),
                    ]
                )
                if progress is not None:
                    progress(n, len(items))
    except OSError as e:
        raise ExportFailed(f"cannot write the CSV export to {path}: {e}") from e
    return ExportResult(path, len(items), 0)
