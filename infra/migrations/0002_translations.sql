-- Read models of the translate service's facts (rebuilt by `habla rebuild`).

-- One row per utterance and revision: revision 0 is the live translation, each
-- `habla retranslate` appends the next. Views show the newest revision.
CREATE TABLE translations (
    utterance_id     text    NOT NULL,
    revision         integer NOT NULL,
    session_id       text    NOT NULL,
    idx              integer NOT NULL,
    source_text      text,
    corrected        text,
    translation      text,
    status           text,
    source_language  text,
    target_language  text,
    corrections      jsonb   NOT NULL DEFAULT '[]',
    idioms           jsonb   NOT NULL DEFAULT '[]',
    model            text,
    translate_ms     integer,
    event_id         uuid    NOT NULL,
    PRIMARY KEY (utterance_id, revision)
);
CREATE INDEX translations_by_session ON translations (session_id, idx, revision);

CREATE TABLE corrections (
    event_id               uuid PRIMARY KEY,
    session_id             text NOT NULL,
    utterance_id           text NOT NULL,
    corrected_utterance_id text,
    idx                    integer,
    said                   text,
    correct                text,
    why                    text,
    cue                    text
);
CREATE INDEX corrections_by_session ON corrections (session_id, idx);

-- What the user saved to study; saved idioms also join the idiom database.
CREATE TABLE saved_terms (
    term_id      text PRIMARY KEY,
    session_id   text NOT NULL,
    term_kind    text NOT NULL,
    text         text NOT NULL,
    meaning      text,
    literal      text,
    example      text,
    utterance_id text,
    language     text,
    saved_at     timestamptz
);

ALTER TABLE sessions ADD COLUMN topic text;
ALTER TABLE sessions ADD COLUMN topic_index integer NOT NULL DEFAULT -1;
