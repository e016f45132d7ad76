-- Idempotency-Key: a request's first answer, per user and key, kept 24 hours.
-- The row is inserted before the request's effect, in the same transaction, and
-- given the answer at its end: a retry racing the original waits on this primary
-- key until the original commits (then replays its answer) or rolls back.
CREATE TABLE idempotency_keys (
    user_id text NOT NULL,
    key text NOT NULL,
    request_hash bytea NOT NULL,
    status smallint NOT NULL DEFAULT 0,
    response_body text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
