-- Study: the daily due queue as one SQL function that the vocab service and the gateway
-- both call, the study settings it reads, and the translations of the turns that
-- vocabulary contexts were heard in (a translation may arrive after the term was saved).

-- One row: the vocab service writes its VOCAB_* settings here when it starts.
CREATE TABLE vocab_settings (
    id               boolean PRIMARY KEY DEFAULT true CHECK (id),
    timezone         text     NOT NULL DEFAULT 'UTC',  -- IANA name
    day_starts_at    smallint NOT NULL DEFAULT 4 CHECK (day_starts_at BETWEEN 0 AND 23),
    new_per_day      integer  NOT NULL DEFAULT 20 CHECK (new_per_day >= 0),
    reviews_per_day  integer  NOT NULL DEFAULT 200 CHECK (reviews_per_day >= 0),
    updated_at       timestamptz
);
INSERT INTO vocab_settings DEFAULT VALUES;

-- The study day that ``at`` falls in: from day_starts_at local time to the same hour
-- the next day (as Anki's day rolls over at 4:00, not at midnight).
CREATE FUNCTION vocab_study_day(at timestamptz, OUT day_start timestamptz, OUT day_end timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT (d.local_start AT TIME ZONE s.timezone), ((d.local_start + interval '1 day') AT TIME ZONE s.timezone)
    FROM vocab_settings s,
         LATERAL (SELECT date_trunc('day', (at AT TIME ZONE s.timezone) - make_interval(hours => s.day_starts_at))
                         + make_interval(hours => s.day_starts_at) AS local_start) d
$$;

-- Today's queue at ``at``: cards studied before that fall due before the day ends
-- (earliest due first), then new cards (earliest saved first), each capped by what is
-- left of the day's limit after the reviews and first answers already given today.
CREATE FUNCTION vocab_due(at timestamptz)
RETURNS TABLE (place integer, item_id text, is_new boolean, due_at timestamptz, first_saved_at timestamptz)
LANGUAGE sql STABLE AS $$
    WITH day AS (SELECT * FROM vocab_study_day(at)),
    done AS (
        SELECT count(*) FILTER (WHERE r.review_no > 1) AS reviewed,
               count(*) FILTER (WHERE r.review_no = 1) AS new
        FROM vocab_reviews r, day WHERE r.live AND r.reviewed_at >= day.day_start
    ),
    reviews AS (
        SELECT i.item_id, false AS is_new, i.due_at, i.first_saved_at, 0 AS part, i.due_at AS sort_at
        FROM vocab_items i, day
        WHERE i.reviews > 0 AND i.due_at < day.day_end
        ORDER BY i.due_at, i.item_id
        LIMIT (SELECT greatest(0, s.reviews_per_day - done.reviewed) FROM vocab_settings s, done)
    ),
    fresh AS (
        SELECT i.item_id, true AS is_new, i.due_at, i.first_saved_at, 1 AS part, i.first_saved_at AS sort_at
        FROM vocab_items i
        WHERE i.reviews = 0
        ORDER BY i.first_saved_at, i.item_id
        LIMIT (SELECT greatest(0, s.new_per_day - done.new) FROM vocab_settings s, done)
    ),
    queue AS (SELECT * FROM reviews UNION ALL SELECT * FROM fresh)
    SELECT (row_number() OVER (ORDER BY part, sort_at, item_id))::integer, item_id, is_new, due_at, first_saved_at
    FROM queue ORDER BY 1
$$;

-- The newest translation of every final the vocab service has seen (translation.final),
-- so a context saved before its turn was translated gets the translation when it comes.
CREATE TABLE vocab_translations (
    session_id   text    NOT NULL,
    utterance_id text    NOT NULL,
    revision     integer NOT NULL,
    translation  text    NOT NULL DEFAULT '',
    corrected    text    NOT NULL DEFAULT '',
    PRIMARY KEY (session_id, utterance_id)
);
