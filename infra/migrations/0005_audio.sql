-- Utterance audio, compressed, outside the log; and deleted sessions.

-- The audio of each segmented utterance (speech.segmented), as Ogg/Opus. The recorder
-- writes it in the transaction that appends the fact, and appends the fact without its
-- PCM, so the append-only log stays small. Not a read model: `habla rebuild` keeps it
-- (it cannot be recomputed from the log). Rows older than AUDIO_RETENTION_DAYS are
-- deleted by the recorder; recorded_at is when the utterance was heard (the fact's time).
CREATE TABLE utterance_audio (
    utterance_id text        PRIMARY KEY,          -- the segmented utterance (turn 0's id)
    session_id   text        NOT NULL,
    start_ms     integer     NOT NULL,             -- session time the audio starts at
    end_ms       integer     NOT NULL,
    sample_rate  integer     NOT NULL,             -- of the PCM it was encoded from (and decodes to)
    codec        text        NOT NULL DEFAULT 'opus',
    data         bytea       NOT NULL,             -- an Ogg/Opus file
    recorded_at  timestamptz NOT NULL
);
CREATE INDEX utterance_audio_by_session ON utterance_audio (session_id);
CREATE INDEX utterance_audio_by_time ON utterance_audio (recorded_at);
-- Opus is compressed already: store it out of line without trying pglz on it.
ALTER TABLE utterance_audio ALTER COLUMN data SET STORAGE EXTERNAL;

-- Sessions the user deleted (session.deleted, recorded in session "admin"): their facts
-- are gone from the log, and a fact that still arrives for one is not recorded. A read
-- model: `habla rebuild` recomputes it from the session.deleted facts.
CREATE TABLE deleted_sessions (
    session_id  text        PRIMARY KEY,
    deleted_at  timestamptz NOT NULL,
    event_id    uuid        NOT NULL               -- the session.deleted fact
);
