-- Names are stored trimmed, so the unique index on lower(name) is the
-- "trimmed, case-insensitive" uniqueness of the API, for public and private rooms alike.
CREATE TABLE rooms (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL CHECK (name <> '' AND char_length(name) <= 100),
    is_private boolean NOT NULL,
    password_hash text,
    creator text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT rooms_private_has_password CHECK (is_private = (password_hash IS NOT NULL))
);
CREATE UNIQUE INDEX rooms_name_key ON rooms (lower(btrim(name)));
-- The public-room quota counts these, under the creation lock.
CREATE INDEX rooms_public ON rooms (id) WHERE NOT is_private;

CREATE TABLE room_members (
    room_id bigint NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    username text NOT NULL,
    joined_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, username)
);
-- GET /api/user_rooms pages a user's rooms newest-joined first.
CREATE INDEX room_members_by_user ON room_members (username, joined_at DESC, room_id DESC);

CREATE TABLE room_messages (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id bigint NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    username text NOT NULL,
    body text NOT NULL CHECK (char_length(body) BETWEEN 1 AND 4000),
    created_at timestamptz NOT NULL DEFAULT now()
);
-- Serves WHERE room_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3.
CREATE INDEX room_messages_page ON room_messages (room_id, id DESC);
