-- What each participant says they send, and their hand. Defaults are what a
-- client joining with microphone and camera on reports; the join applies
-- muteParticipantsOnJoin.
ALTER TABLE participants
    ADD COLUMN audio boolean NOT NULL DEFAULT true,
    ADD COLUMN video boolean NOT NULL DEFAULT true,
    ADD COLUMN screen boolean NOT NULL DEFAULT false,
    ADD COLUMN hand_raised boolean NOT NULL DEFAULT false;

-- Presence. UNLOGGED: a socket does not outlive the server process that holds
-- it, so nothing here needs to survive a Postgres crash (which empties these
-- tables, and every replica then finds its own row gone and asks its clients to
-- reconnect), and writing it costs no WAL.
-- One row per live replica; its heartbeat says it is alive.
CREATE UNLOGGED TABLE replicas (
    id text PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- One row per open room socket. A participant is connected while they have one;
-- the rows of a replica whose heartbeat went stale are purged with it.
CREATE UNLOGGED TABLE connections (
    id text PRIMARY KEY,
    participant_id text NOT NULL REFERENCES participants (id) ON DELETE CASCADE,
    replica_id text NOT NULL REFERENCES replicas (id) ON DELETE CASCADE,
    opened_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX connections_participant ON connections (participant_id);
CREATE INDEX connections_replica ON connections (replica_id);

-- Signals too large for a NOTIFY payload: the notification carries the id and
-- each replica reads the row. UNLOGGED: a signal lives for seconds, and one lost
-- to a crash is renegotiated by the peers. Rows are purged after a short TTL.
CREATE UNLOGGED TABLE signals (
    id text PRIMARY KEY,
    room_id text NOT NULL,
    sender_id text NOT NULL,
    recipient_id text NOT NULL,
    kind text NOT NULL,
    data text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX signals_created ON signals (created_at);
