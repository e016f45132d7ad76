-- Settings live on the room row: they are one-to-one with it, and the join
-- transaction locks that one row to read capacity and write participants.
CREATE TABLE rooms (
    id text PRIMARY KEY,
    code text NOT NULL,
    name text NOT NULL,
    host_id text NOT NULL,
    -- The host's profile as the token said when the room was created.
    host_display_name text NOT NULL,
    host_avatar_url text,
    is_active boolean NOT NULL DEFAULT true,
    is_locked boolean NOT NULL DEFAULT false,
    settings_id text NOT NULL UNIQUE,
    allow_chat boolean NOT NULL DEFAULT true,
    allow_screen_share boolean NOT NULL DEFAULT true,
    allow_guest_access boolean NOT NULL DEFAULT true,
    waiting_room boolean NOT NULL DEFAULT false,
    mute_participants_on_join boolean NOT NULL DEFAULT false,
    max_participants integer NOT NULL DEFAULT 50,
    started_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    ended_at timestamptz,
    CONSTRAINT rooms_code_key UNIQUE (code),
    CONSTRAINT rooms_code_format CHECK (code ~ '^[a-z]{3}-[a-z]{3}-[a-z]{3}$'),
    CONSTRAINT rooms_name_length CHECK (char_length(name) BETWEEN 1 AND 100),
    CONSTRAINT rooms_max_participants_range CHECK (max_participants BETWEEN 2 AND 100),
    CONSTRAINT rooms_ended_iff_inactive CHECK ((ended_at IS NULL) = is_active)
);

CREATE INDEX rooms_host_newest ON rooms (host_id, created_at DESC, id DESC);

-- One row per person and room: joining again updates it, so a person is
-- never counted twice and a removal is remembered.
CREATE TABLE participants (
    id text PRIMARY KEY,
    room_id text NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id text NOT NULL,
    display_name text NOT NULL,
    avatar_url text,
    is_host boolean NOT NULL,
    is_guest boolean NOT NULL,
    status text NOT NULL,
    -- Set when the person first reached `joined`: "rooms I have joined".
    ever_joined boolean NOT NULL DEFAULT false,
    joined_at timestamptz NOT NULL DEFAULT now(),
    left_at timestamptz,
    CONSTRAINT participants_room_user_key UNIQUE (room_id, user_id),
    CONSTRAINT participants_status_check
        CHECK (status IN ('waiting', 'joined', 'left', 'denied', 'removed'))
);

CREATE INDEX participants_room_status ON participants (room_id, status);
CREATE INDEX participants_user ON participants (user_id) WHERE ever_joined;

-- `seq` orders the history; `id` is the public, non-guessable handle.
CREATE TABLE messages (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text NOT NULL UNIQUE,
    room_id text NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    participant_id text NOT NULL REFERENCES participants (id) ON DELETE CASCADE,
    user_id text NOT NULL,
    display_name text NOT NULL,
    avatar_url text,
    is_guest boolean NOT NULL,
    content text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT messages_content_length CHECK (char_length(content) BETWEEN 1 AND 4000)
);

CREATE INDEX messages_room_newest ON messages (room_id, seq DESC);
