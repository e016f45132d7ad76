"""Presence: who has a room socket open, on which replica, and replicas' heartbeats.

A participant is connected while they have a row in `connections`. Opening the
first socket and closing the last are told to the room (`participant.connected`,
`participant.disconnected`); both lock the participant's row first, so two
sockets opening or closing at once on two replicas are told exactly once. A
replica whose heartbeat went stale (it was killed, or lost the database) is
purged with its connections, and the participants left without one are told
disconnected the same way."""

from __future__ import annotations

from dataclasses import dataclass

from meeting_service.models import Participant, RoomDetail
from meeting_service.refusals import Refusal, Refused
from meeting_service.store import (
    PARTICIPANT_COLUMNS,
    PRESENT,
    Connection,
    Pool,
    Record,
    membership,
    participant,
    participant_event,
    room_detail,
    room_row,
)
from shared.auth import Identity
from shared.realtime import Publisher

PARTICIPANT_BY_ID = f"SELECT {PARTICIPANT_COLUMNS} FROM participants WHERE id = $1"


async def _locked(conn: Connection, participant_id: str) -> Record | None:
    """The participant's row, locked until commit, as of after the lock was granted.
    Two statements: a `FOR UPDATE` that waited re-reads the locked row but not its
    subqueries, whose snapshot (`connected`) predates the wait."""
    await conn.execute("SELECT 1 FROM participants WHERE id = $1 FOR UPDATE", participant_id)
    return await conn.fetchrow(PARTICIPANT_BY_ID, participant_id)


@dataclass(frozen=True)
class Opened:
    """A socket, authorized and registered, with what its client is shown first."""

    self_: Participant
    room: RoomDetail
    participants: list[Participant]


async def open_socket(
    pool: Pool, events: Publisher, replica_id: str, socket_id: str, who: Identity, room_id: str
) -> Opened:
    """Who may hold a room socket: the host, joined participants, and those waiting
    (they need to hear that they were admitted or denied)."""
    async with pool.acquire() as conn, conn.transaction():
        room = await room_row(conn, room_id)
        found = await membership(conn, room_id, who.user_id)
        if found is None:
            raise Refused(Refusal.NOT_IN_ROOM)
        row = await _locked(conn, found["id"])
        assert row is not None
        if room["host_id"] != who.user_id and row["status"] not in PRESENT:
            raise Refused(Refusal.NOT_IN_ROOM)
        await conn.execute(
            "INSERT INTO connections (id, participant_id, replica_id) VALUES ($1, $2, $3)",
            socket_id,
            row["id"],
            replica_id,
        )
        if not row["connected"]:
            row = await conn.fetchrow(PARTICIPANT_BY_ID, row["id"])
            assert row is not None
            await events.publish(conn, topic=room_id, event=participant_event("connected", row))
        visible = list(PRESENT) if room["host_id"] == who.user_id else ["joined"]
        if row["status"] != "joined" and room["host_id"] != who.user_id:
            visible = []
        others = await conn.fetch(
            f"SELECT {PARTICIPANT_COLUMNS} FROM participants"
            " WHERE room_id = $1 AND status = ANY($2::text[])"
            " ORDER BY is_host DESC, joined_at, id",
            room_id,
            visible,
        )
    return Opened(participant(row), room_detail(room), [participant(p) for p in others])


async def close_socket(pool: Pool, events: Publisher, socket_id: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        owner = await conn.fetchval(
            "SELECT participant_id FROM connections WHERE id = $1", socket_id
        )
        if owner is None:
            return  # already purged
        await _locked(conn, owner)
        deleted = await conn.fetchval(
            "DELETE FROM connections WHERE id = $1 RETURNING true", socket_id
        )
        if deleted:  # else a purge took it meanwhile, and told the room
            await _tell_if_gone(conn, events, owner)


async def _tell_if_gone(conn: Connection, events: Publisher, participant_id: str) -> None:
    """After a locked participant lost a socket: disconnected, if it was the last."""
    after = await conn.fetchrow(PARTICIPANT_BY_ID, participant_id)
    if after is not None and not after["connected"]:
        event = participant_event("disconnected", after)
        await events.publish(conn, topic=after["room_id"], event=event)


async def register_replica(pool: Pool, replica_id: str) -> None:
    await pool.execute(
        "INSERT INTO replicas (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()",
        replica_id,
    )


async def heartbeat(pool: Pool, replica_id: str) -> bool:
    """Say this replica is alive. False if it had been purged as dead meanwhile: its
    sockets are no longer counted, and their clients must connect again."""
    alive = await pool.fetchval(
        "UPDATE replicas SET heartbeat_at = now() WHERE id = $1 RETURNING true", replica_id
    )
    if alive:
        return True
    await register_replica(pool, replica_id)
    return False


async def purge_replicas(
    pool: Pool, events: Publisher, *, stale_s: float, only: str | None = None
) -> int:
    """Forget the replicas silent for `stale_s` (or the one replica `only`, at its
    own shutdown) and their connections. Participants are locked in id order, as
    every presence change locks them first: purges on two replicas never deadlock."""
    async with pool.acquire() as conn, conn.transaction():
        gone = await conn.fetch(
            "SELECT id FROM replicas WHERE id = $1"
            " OR ($1 IS NULL AND heartbeat_at < now() - make_interval(secs => $2))"
            " FOR UPDATE SKIP LOCKED",
            only,
            stale_s,
        )
        ids = [r["id"] for r in gone]
        if not ids:
            return 0
        rows = await conn.fetch(
            "SELECT id FROM participants"
            " WHERE id IN (SELECT participant_id FROM connections WHERE replica_id = ANY($1))"
            " ORDER BY id FOR UPDATE",
            ids,
        )
        for row in rows:
            deleted = await conn.fetchval(
                "WITH gone AS (DELETE FROM connections"
                " WHERE participant_id = $1 AND replica_id = ANY($2) RETURNING 1)"
                " SELECT count(*) FROM gone",
                row["id"],
                ids,
            )
            if deleted:
                await _tell_if_gone(conn, events, row["id"])
        await conn.execute("DELETE FROM replicas WHERE id = ANY($1)", ids)
        return len(ids)
