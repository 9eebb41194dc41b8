-- Vocabulary and study (the vocab service): read models of vocab.saved, vocab.reviewed
-- and vocab.deleted, rebuilt from the log by the vocab service's rebuild.
--
-- The three detail tables hold one row per fact (idempotent by event id). After each fact
-- the item's row in vocab_items is recomputed from them, so the facts may arrive in any
-- order: an item is live while it has a context saved after its newest deletion, and its
-- SM-2 schedule is the fold of its live reviews in time order.

CREATE TABLE vocab_contexts (
    context_id    text PRIMARY KEY,               -- the vocab.saved event id
    item_id       text        NOT NULL,
    session_id    text        NOT NULL,           -- the session it was heard in
    term_id       text,
    item_kind     text        NOT NULL,           -- idiom | word | phrase | correction
    canonical     text        NOT NULL,
    text          text        NOT NULL,           -- as the user selected it
    language      text        NOT NULL,
    meaning       text        NOT NULL DEFAULT '',
    literal       text        NOT NULL DEFAULT '',
    utterance_id  text,
    heard         text        NOT NULL DEFAULT '',
    corrected     text        NOT NULL DEFAULT '',
    translation   text        NOT NULL DEFAULT '',
    speaker       text,
    speaker_name  text,
    start_ms      integer,
    end_ms        integer,
    clip          bytea,                          -- compressed audio of the original speech
    clip_format   text,
    zipf          double precision NOT NULL DEFAULT 0,
    band          smallint    NOT NULL DEFAULT 5,
    saved_at      timestamptz NOT NULL,
    live          boolean     NOT NULL DEFAULT true
);
CREATE INDEX vocab_contexts_by_item ON vocab_contexts (item_id, saved_at);
CREATE INDEX vocab_contexts_by_session ON vocab_contexts (session_id);

CREATE TABLE vocab_reviews (
    review_id     text PRIMARY KEY,               -- the vocab.reviewed event id
    item_id       text        NOT NULL,
    grade         smallint    NOT NULL,
    answer_ms     integer     NOT NULL DEFAULT 0,
    reviewed_at   timestamptz NOT NULL,
    live          boolean     NOT NULL DEFAULT true,
    -- the schedule after this review (NULL when not live or the grade is not 0-5)
    review_no     integer,                        -- 1 = the item's first review
    ease          double precision,
    interval_days integer,
    due_at        timestamptz
);
CREATE INDEX vocab_reviews_by_item ON vocab_reviews (item_id, reviewed_at);
CREATE INDEX vocab_reviews_by_time ON vocab_reviews (reviewed_at);

CREATE TABLE vocab_deletions (
    event_id      text PRIMARY KEY,               -- the vocab.deleted event id
    item_id       text        NOT NULL,
    deleted_at    timestamptz NOT NULL
);
CREATE INDEX vocab_deletions_by_item ON vocab_deletions (item_id);

-- One row per live item: its newest context's form and meaning, and its schedule.
CREATE TABLE vocab_items (
    item_id          text PRIMARY KEY,
    canonical        text        NOT NULL,
    item_kind        text        NOT NULL,
    language         text        NOT NULL,
    meaning          text        NOT NULL DEFAULT '',
    literal          text        NOT NULL DEFAULT '',
    zipf             double precision NOT NULL DEFAULT 0,
    band             smallint    NOT NULL DEFAULT 5,
    contexts         integer     NOT NULL,
    first_saved_at   timestamptz NOT NULL,
    last_saved_at    timestamptz NOT NULL,
    ease             double precision NOT NULL,
    interval_days    integer     NOT NULL,
    repetitions      integer     NOT NULL,
    reviews          integer     NOT NULL,
    lapses           integer     NOT NULL,
    last_grade       smallint,
    last_reviewed_at timestamptz,
    due_at           timestamptz NOT NULL
);
CREATE INDEX vocab_items_by_due ON vocab_items (due_at);
