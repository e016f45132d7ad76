-- Every list is read along a keyset index that starts with what it is filtered by,
-- so a page costs the same however much else the tables hold (issue 9).
--
-- History: the primary key becomes (room_id, id), and no b-tree orders messages by
-- id alone. With one, the planner would walk it backwards for a busy room, filtering
-- on room_id, through every message sent to other rooms since this room's last one.
-- Lookups of one message by id (realtime events) use a hash index, which has no order.
ALTER TABLE room_messages DROP CONSTRAINT room_messages_pkey;
DROP INDEX room_messages_page;
ALTER TABLE room_messages ADD CONSTRAINT room_messages_pkey PRIMARY KEY (room_id, id);
CREATE INDEX room_messages_by_id ON room_messages USING hash (id);

-- GET /api/room_members pages a room's members in joining order.
CREATE INDEX room_members_by_room ON room_members (room_id, joined_at, username);
