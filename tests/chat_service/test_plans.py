"""Every list reads along an index that starts with what it filters, in the custom and
the generic plan alike (asyncpg prepares statements, and Postgres switches a prepared
statement to its generic plan after five runs): EXPLAIN shows it, on tables big enough
for the planner to have a choice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from chat_service import messages_store, store
from shared.db import migrate

MIGRATIONS = Path(store.__file__).parent / "migrations"
MODES = ("force_custom_plan", "force_generic_plan")


@pytest.fixture
async def chat(db: asyncpg.Connection) -> asyncpg.Connection:
    await migrate(db, "chat", MIGRATIONS)
    await db.execute("SET search_path TO chat")
    return db


async def new_room(db: asyncpg.Connection, name: str) -> int:
    room_id: int = await db.fetchval(
        "INSERT INTO rooms (name, is_private, creator) VALUES ($1, false, 'alice') RETURNING id",
        name,
    )
    return room_id


async def explain(
    db: asyncpg.Connection, sql: str, args: tuple[Any, ...], mode: str, *, analyze: bool = False
) -> dict[str, Any]:
    """The plan of `sql` prepared as the driver prepares it, run with `args`."""
    await db.execute(f"SET plan_cache_mode = {mode}")
    await db.execute(f"PREPARE page AS {sql}")
    literals = ", ".join("NULL" if a is None else f"'{a}'" for a in args)
    options = "ANALYZE, BUFFERS, " if analyze else ""
    try:
        text = await db.fetchval(f"EXPLAIN ({options}FORMAT JSON) EXECUTE page({literals})")
    finally:
        await db.execute("DEALLOCATE page")
    plan: dict[str, Any] = json.loads(text)[0]["Plan"]
    return plan


def nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(n for child in plan.get("Plans", []) for n in nodes(child))]


def scan_of(plan: dict[str, Any], table: str) -> dict[str, Any]:
    scans = [n for n in nodes(plan) if n.get("Relation Name") == table]
    assert len(scans) == 1, plan
    return scans[0]


def assert_keyset(
    plan: dict[str, Any],
    table: str,
    index: str,
    *columns: str,
    scan: dict[str, Any] | None = None,
) -> None:
    """An index scan of `index` (the plan's one scan of `table`, or `scan`) whose
    condition holds `columns`, nothing filtered after the fact and nothing sorted:
    the page is the index's next rows."""
    scan = scan if scan is not None else scan_of(plan, table)
    assert scan["Node Type"] in ("Index Scan", "Index Only Scan"), scan
    assert scan["Index Name"] == index, scan
    for column in columns:
        assert column in scan["Index Cond"], scan
    assert "Filter" not in scan, scan
    assert not [n for n in nodes(plan) if n["Node Type"] in ("Sort", "Incremental Sort")], plan


def checked_page_scans(plan: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A checked page's (messages_store.PAGE_JSON, NEWER_JSON) two reads of
    room_messages: the room's newest id, then the page's keyset."""
    scans = [n for n in nodes(plan) if n.get("Relation Name") == "room_messages"]
    [newest] = [s for s in scans if "(id " not in s["Index Cond"]]
    [page] = [s for s in scans if "(id " in s["Index Cond"]]
    return newest, page


def assert_checked_page(plan: dict[str, Any], direction: str) -> None:
    """The room's newest id is the last entry of the primary key's room_id prefix
    (max(id): an index-only scan, read backwards, of one entry); the membership an
    InitPlan, looked up once along room_members' key; the page, an InitPlan run only
    when needed, the keyset along the primary key in `direction`."""
    newest, page = checked_page_scans(plan)
    assert newest["Node Type"] == "Index Only Scan", newest
    assert newest["Index Name"] == "room_messages_pkey", newest
    assert newest["Scan Direction"] == "Backward", newest
    assert "room_id" in newest["Index Cond"], newest
    assert "Filter" not in newest, newest
    assert_keyset(plan, "room_messages", "room_messages_pkey", "room_id", "id", scan=page)
    assert page["Scan Direction"] == direction, page
    [check] = [n for n in nodes(plan) if n.get("Relation Name") == "room_members"]
    assert check["Parent Relationship"] == "InitPlan", plan
    assert check["Node Type"] in ("Index Scan", "Index Only Scan"), check
    [built] = [n for n in plan["Plans"] if n["Parent Relationship"] == "InitPlan"]
    assert page in nodes(built), plan


async def quiet_and_busy(chat: asyncpg.Connection) -> tuple[int, int]:
    """Two rooms of alice's: a quiet one of 1,000 messages, and a busy one whose
    million messages all came after the quiet room's newest one."""
    quiet = await new_room(chat, "quiet")
    busy = await new_room(chat, "busy")
    await chat.execute(
        "INSERT INTO room_messages (room_id, username, body)"
        " SELECT $1, 'alice', 'old ' || i FROM generate_series(1, 1000) i",
        quiet,
    )
    # Written without the per-row foreign-key check, which only slows the test down.
    await chat.execute("SET session_replication_role = replica")
    await chat.execute(
        "INSERT INTO room_messages (room_id, username, body)"
        " SELECT $1, 'bob', 'new ' || i FROM generate_series(1, 1000000) i",
        busy,
    )
    await chat.execute("RESET session_replication_role")
    await chat.execute(
        "INSERT INTO room_members (room_id, username) VALUES ($1, 'alice'), ($2, 'alice')",
        quiet,
        busy,
    )
    return quiet, busy


async def test_history_reads_its_own_room_only_however_busy_the_others(chat):
    quiet, busy = await quiet_and_busy(chat)
    await chat.execute("ANALYZE room_messages")
    for mode in MODES:
        for room in (quiet, busy):
            for before in (messages_store.NO_UPPER_BOUND, 500):
                plan = await explain(chat, messages_store.MESSAGES_PAGE, (room, before, 51), mode)
                assert_keyset(plan, "room_messages", "room_messages_pkey", "room_id", "id")
                # A member's page (as JSON, checked against the cache): the same scan,
                # after the room's newest id and a membership check run once.
                plan = await explain(
                    chat,
                    messages_store.PAGE_JSON,
                    (room, before, 51, "alice", messages_store.NOT_CACHED),
                    mode,
                )
                assert_checked_page(plan, "Backward")
            # `after`: the same key, forwards.
            plan = await explain(chat, messages_store.MESSAGES_NEWER, (room, 500, 51), mode)
            assert_keyset(plan, "room_messages", "room_messages_pkey", "room_id", "id")
            plan = await explain(
                chat,
                messages_store.NEWER_JSON,
                (room, 500, 51, "alice", messages_store.NOT_CACHED),
                mode,
            )
            assert_checked_page(plan, "Forward")
        # What it costs: a handful of pages, none of the other room's million rows.
        plan = await explain(
            chat,
            messages_store.MESSAGES_PAGE,
            (quiet, messages_store.NO_UPPER_BOUND, 51),
            mode,
            analyze=True,
        )
        scan = scan_of(plan, "room_messages")
        assert scan["Actual Rows"] == 51
        assert scan["Shared Hit Blocks"] + scan["Shared Read Blocks"] < 20, scan
        # The checked page: built, the same handful of pages and one entry for the
        # newest id; with the newest id the cache has, the page is never read.
        quiet_newest = await chat.fetchval(
            "SELECT max(id) FROM room_messages WHERE room_id = $1", quiet
        )
        args = (quiet, messages_store.NO_UPPER_BOUND, 51, "alice")
        plan = await explain(
            chat, messages_store.PAGE_JSON, (*args, messages_store.NOT_CACHED), mode, analyze=True
        )
        newest, page = checked_page_scans(plan)
        assert newest["Actual Rows"] == 1, newest
        assert newest["Shared Hit Blocks"] + newest["Shared Read Blocks"] < 10, newest
        assert page["Actual Rows"] == 51, page
        assert page["Shared Hit Blocks"] + page["Shared Read Blocks"] < 20, page
        plan = await explain(
            chat, messages_store.PAGE_JSON, (*args, quiet_newest), mode, analyze=True
        )
        newest, page = checked_page_scans(plan)
        assert newest["Actual Loops"] == 1, newest
        assert page["Actual Loops"] == 0, page  # "never executed"
    # A message by id alone (realtime events) is an index lookup too.
    plan = await explain(chat, messages_store.MESSAGE_BY_ID, (7,), "force_generic_plan")
    assert scan_of(plan, "room_messages")["Index Name"] == "room_messages_by_id"


async def test_room_members_pages_along_the_room_index(chat):
    rooms = [await new_room(chat, f"room {i}") for i in range(20)]
    await chat.execute(
        "INSERT INTO room_members (room_id, username, joined_at)"
        " SELECT r, 'user' || u, now() - u * interval '1 second'"
        " FROM unnest($1::bigint[]) r, generate_series(1, 2000) u",
        rooms,
    )
    await chat.execute("ANALYZE room_members")
    # Where the second page starts.
    rows = await chat.fetch(store.MEMBERS_FIRST, rooms[3], "alice", 50)
    after = (rows[-1]["joined_at"], rows[-1]["username"])
    for mode in MODES:
        first = await explain(chat, store.MEMBERS_FIRST, (rooms[3], "alice", 51), mode)
        assert_keyset(first, "room_members", "room_members_by_room", "room_id")
        later = await explain(chat, store.MEMBERS_AFTER, (rooms[3], "alice", 51, *after), mode)
        assert_keyset(later, "room_members", "room_members_by_room", "room_id", "joined_at")


async def test_user_rooms_pages_along_the_user_index(chat):
    rooms = [await new_room(chat, f"room {i}") for i in range(200)]
    await chat.execute(
        "INSERT INTO room_members (room_id, username, joined_at)"
        " SELECT r, 'user' || u, now() - r * interval '1 second'"
        " FROM unnest($1::bigint[]) r, generate_series(1, 100) u",
        rooms,
    )
    await chat.execute("ANALYZE")
    rows = await chat.fetch(store.USER_ROOMS_FIRST, "user7", 50)
    after = (rows[-1]["joined_at"], rows[-1]["room_id"])
    for mode in MODES:
        first = await explain(chat, store.USER_ROOMS_FIRST, ("user7", 51), mode)
        assert_keyset(first, "room_members", "room_members_by_user", "username")
        later = await explain(chat, store.USER_ROOMS_AFTER, ("user7", 51, *after), mode)
        assert_keyset(later, "room_members", "room_members_by_user", "username", "joined_at")
        # Each room of the page is one primary-key lookup.
        assert scan_of(later, "rooms")["Index Name"] == "rooms_pkey"


def batched_page_scans(
    plan: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The batched check's (messages_store.PAGES_JSON) three reads of room_messages:
    each item's room's newest id, and the backward and the forward page's keysets."""
    scans = [n for n in nodes(plan) if n.get("Relation Name") == "room_messages"]
    [newest] = [s for s in scans if "(id " not in s["Index Cond"]]
    [backward] = [s for s in scans if "(id < " in s["Index Cond"]]
    [forward] = [s for s in scans if "(id > " in s["Index Cond"]]
    return newest, backward, forward


def assert_batched_pages(plan: dict[str, Any]) -> None:
    """Per item of the arrays, what assert_checked_page asserts of one page: the
    room's newest id an index-only scan read backwards, the membership a lookup along
    room_members' key, and each direction's page a keyset along the primary key, in
    a SubPlan of its own (run only for the items that take its branch)."""
    newest, backward, forward = batched_page_scans(plan)
    assert newest["Node Type"] == "Index Only Scan", newest
    assert newest["Index Name"] == "room_messages_pkey", newest
    assert newest["Scan Direction"] == "Backward", newest
    assert "room_id" in newest["Index Cond"], newest
    assert "Filter" not in newest, newest
    for page, direction in ((backward, "Backward"), (forward, "Forward")):
        assert_keyset(plan, "room_messages", "room_messages_pkey", "room_id", "id", scan=page)
        assert page["Scan Direction"] == direction, page
    [check] = [n for n in nodes(plan) if n.get("Relation Name") == "room_members"]
    assert check["Node Type"] in ("Index Scan", "Index Only Scan"), check
    assert "room_id" in check["Index Cond"] and "username" in check["Index Cond"], check
    assert "Filter" not in check, check
    # The items are read once, by the function scan the rest is a nested loop over.
    assert not [n for n in nodes(plan) if "Hash" in n["Node Type"]], plan
    subplans = [n for n in nodes(plan) if n.get("Subplan Name", "").startswith("SubPlan")]
    assert [
        page for page in (backward, forward) if not any(page in nodes(s) for s in subplans)
    ] == []


def items(*reads: tuple[int, str, int, int, int, bool]) -> tuple[str, ...]:
    """PAGES_JSON's six arrays, as literals, from (room, user, known, bound, limit,
    forwards) per item."""
    columns = list(zip(*reads, strict=True))
    return tuple("{" + ",".join(str(v).lower() for v in column) + "}" for column in columns)


async def test_batched_history_reads_walk_each_room_s_keyset(chat):
    quiet, busy = await quiet_and_busy(chat)
    # Rooms with members enough for the planner to have a choice.
    await chat.execute(
        "INSERT INTO room_members (room_id, username)"
        " SELECT r, 'user' || u FROM unnest($1::bigint[]) r, generate_series(1, 2000) u",
        [quiet, busy],
    )
    await chat.execute("ANALYZE")
    newest = {
        room: await chat.fetchval("SELECT max(id) FROM room_messages WHERE room_id = $1", room)
        for room in (quiet, busy)
    }
    top, miss = messages_store.NO_UPPER_BOUND, messages_store.NOT_CACHED
    # Misses in both directions, in both rooms, and a read of someone else's.
    built = items(
        (quiet, "alice", miss, top, 51, False),
        (busy, "alice", miss, newest[busy] - 100, 51, False),
        (quiet, "alice", miss, 500, 51, True),
        (busy, "carol", miss, top, 51, False),
    )
    # Every read's cached page still current.
    hits = items(
        (quiet, "alice", newest[quiet], top, 51, False),
        (busy, "alice", newest[busy], top, 51, False),
        (quiet, "alice", newest[quiet], 500, 51, True),
    )
    for mode in MODES:
        for args in (built, hits):
            assert_batched_pages(await explain(chat, messages_store.PAGES_JSON, args, mode))
        # What it costs: each page built a handful of blocks, read only for the items
        # that need it; with every page current, no page is read at all.
        plan = await explain(chat, messages_store.PAGES_JSON, built, mode, analyze=True)
        newest_scan, backward, forward = batched_page_scans(plan)
        assert newest_scan["Actual Loops"] == 4, newest_scan
        assert backward["Actual Loops"] == 2, backward  # not carol's
        assert forward["Actual Loops"] == 1, forward
        assert backward["Actual Rows"] == 51 and forward["Actual Rows"] == 51  # per loop
        for scan in (newest_scan, backward, forward):
            blocks = scan["Shared Hit Blocks"] + scan["Shared Read Blocks"]
            assert blocks / scan["Actual Loops"] < 20, scan
        plan = await explain(chat, messages_store.PAGES_JSON, hits, mode, analyze=True)
        newest_scan, backward, forward = batched_page_scans(plan)
        assert newest_scan["Actual Loops"] == 3, newest_scan
        assert backward["Actual Loops"] == 0, backward  # "never executed"
        assert forward["Actual Loops"] == 0, forward
