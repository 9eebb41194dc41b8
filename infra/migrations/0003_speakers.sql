-- Speakers (diarize): who said each utterance, the session's speakers and the voices
-- kept across sessions. Read models, rebuilt from the log by `habla rebuild`.

-- A segmented utterance may be split into speaker turns: the first turn keeps the
-- utterance's id (part 0), later ones get derived ids with the same idx and a higher
-- part. times_from / speaker_from say which fact set start_ms/end_ms and speaker
-- (1 speech.segmented, 2 speaker.assigned, 3 asr.final; 0 none): the highest wins
-- whatever order the facts arrive in, so a split first turn keeps its own end_ms.
ALTER TABLE utterances ADD COLUMN part integer NOT NULL DEFAULT 0;
ALTER TABLE utterances ADD COLUMN parts integer NOT NULL DEFAULT 1;
ALTER TABLE utterances ADD COLUMN parent_id text;
ALTER TABLE utterances ADD COLUMN speaker text;
ALTER TABLE utterances ADD COLUMN times_from smallint NOT NULL DEFAULT 0;
ALTER TABLE utterances ADD COLUMN speaker_from smallint NOT NULL DEFAULT 0;
-- rows projected before this migration: times came from the final if there was one
UPDATE utterances SET times_from = CASE WHEN text IS NOT NULL THEN 3 ELSE 1 END;

ALTER TABLE utterances DROP CONSTRAINT utterances_session_id_idx_key;
ALTER TABLE utterances ADD CONSTRAINT utterances_session_id_idx_part_key UNIQUE (session_id, idx, part);
DROP INDEX utterances_by_session;  -- the unique index above serves (session_id, idx, part) order

-- One row per speaker of a session. name/role/is_user come from the newest fact (by
-- the session's seq) that sets them, whatever order the facts arrive in.
CREATE TABLE speakers (
    session_id      text    NOT NULL,
    speaker         text    NOT NULL,              -- "S1", "S2", ...
    number          integer,                       -- NULL until speaker.joined is recorded
    label           text,                          -- "Speaker 2" or a recognised voiceprint's name
    color           text,
    voiceprint_id   text,                          -- the stored voice it matched when it joined
    similarity      double precision,
    joined_at       timestamptz,
    name            text,                          -- given by the user (or a voiceprint recognised later)
    name_source     text,                          -- user | voiceprint
    remember        boolean NOT NULL DEFAULT false,
    name_seq        bigint  NOT NULL DEFAULT -1,
    is_user         boolean NOT NULL DEFAULT false,
    user_seq        bigint  NOT NULL DEFAULT -1,   -- speaker.joined or speaker.renamed that set is_user
    role            text,                          -- instructor | student (suggested, classroom mode)
    role_confidence double precision,
    role_evidence   jsonb,
    role_seq        bigint  NOT NULL DEFAULT -1,
    PRIMARY KEY (session_id, speaker)
);

-- Voices kept across sessions (opt-in). A voiceprint is live while it was saved after
-- its newest deletion; a deletion forgets the embedding. No view ever returns it.
CREATE TABLE voiceprints (
    voiceprint_id text PRIMARY KEY,
    name          text,
    is_user       boolean NOT NULL DEFAULT false,
    backend       text,
    dim           integer,
    embedding     bytea,                           -- float32 little-endian, dim long
    speech_ms     integer,
    session_id    text,                            -- the session it came from ("enrolment")
    speaker       text,
    saved_at      timestamptz,
    deleted_at    timestamptz
);
