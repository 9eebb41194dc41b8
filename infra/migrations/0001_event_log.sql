-- The append-only event log and the first read models.

CREATE TABLE events (
    position     bigserial   PRIMARY KEY,            -- global order of recording
    event_id     uuid        NOT NULL UNIQUE,        -- idempotent append
    session_id   text        NOT NULL,
    seq          bigint      NOT NULL,               -- per-session sequence from the bus
    kind         text        NOT NULL,
    version      integer     NOT NULL,
    occurred_at  timestamptz NOT NULL,
    payload      bytea       NOT NULL,               -- msgpack, the bus's own codec
    UNIQUE (session_id, seq)
);
CREATE INDEX events_by_session ON events (session_id, position);
CREATE INDEX events_by_kind ON events (kind, position);

-- Facts are never changed. Deleting a session's facts (an explicit, confirmed user
-- action) must set habla.allow_delete = 'on' in its transaction.
CREATE FUNCTION events_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'events is append-only: % is not allowed', TG_OP;
    END IF;
    IF coalesce(current_setting('habla.allow_delete', true), '') <> 'on' THEN
        RAISE EXCEPTION 'events is append-only: DELETE needs habla.allow_delete';
    END IF;
    RETURN OLD;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();

-- Read models: rebuilt from the log by `habla rebuild`.
CREATE TABLE sessions (
    session_id   text PRIMARY KEY,
    started_at   timestamptz,
    ended_at     timestamptz,
    end_reason   text,
    direction    text,
    mode         text,
    codec        text,
    source       text,
    title        text,
    settings_seq bigint NOT NULL DEFAULT 0
);

CREATE TABLE utterances (
    utterance_id text PRIMARY KEY,
    session_id   text    NOT NULL,
    idx          integer NOT NULL,
    start_ms     integer,
    end_ms       integer,
    reason       text,
    text         text,
    language     text,
    dropped      text,
    avg_logprob  double precision,
    asr_ms       integer,
    model        text,
    UNIQUE (session_id, idx)
);
CREATE INDEX utterances_by_session ON utterances (session_id, idx);
