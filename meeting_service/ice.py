"""ICE servers for a participant: STUN as configured, and TURN with time-limited
credentials in the TURN REST API convention (draft-uberti-behave-turn-rest):
username "<unix expiry>:<participant id>", credential base64(HMAC-SHA1(secret,
username)). coturn with use-auth-secret and the same static-auth-secret checks
them itself, with no call back to this service."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from meeting_service.models import IceServers, StunServer, TurnServer
from meeting_service.settings import MeetingSettings


def turn_credential(secret: str, username: str) -> str:
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def ice_servers(
    settings: MeetingSettings, participant_id: str, now: float | None = None
) -> IceServers:
    servers: list[TurnServer | StunServer] = []
    if settings.stun_urls:
        servers.append(StunServer(urls=settings.stun_urls))
    if settings.turn_urls and settings.turn_secret:
        expiry = int(time.time() if now is None else now) + settings.turn_ttl_s
        username = f"{expiry}:{participant_id}"
        servers.append(
            TurnServer(
                urls=settings.turn_urls,
                username=username,
                credential=turn_credential(settings.turn_secret, username),
            )
        )
    return IceServers(ice_servers=servers, ttl=settings.turn_ttl_s)
