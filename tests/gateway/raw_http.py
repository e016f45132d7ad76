"""A client that writes raw bytes and reads HTTP/1.1 answers as they come, for the
edge's tests (pipelining, hand-offs, what exactly goes over the wire)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httptools


@dataclass
class Answer:
    status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    raw: bytes = b""

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


class RawClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.parser = httptools.HttpResponseParser(self)
        self.answers: list[Answer] = []
        self.current = Answer()
        self.wire = bytearray()  # the bytes of answers not complete yet
        self.head_only = False

    @classmethod
    async def open(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def answer(self) -> Answer:
        """The next answer, read until it is complete."""
        while not self.answers:
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionError("closed before an answer")
            self.wire += data
            self.parser.feed_data(data)
            if self.head_only and self.current.status and not self.answers:
                # An answer to HEAD has no body, whatever its Content-Length says.
                self.on_message_complete()
                self.parser = httptools.HttpResponseParser(self)
        return self.answers.pop(0)

    async def closed(self) -> bool:
        """True once the server closes the connection (nothing more was sent)."""
        return await self.reader.read(65536) == b""

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.current.headers.append((name.decode(), value.decode()))

    def on_headers_complete(self) -> None:
        self.current.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self.current.body += body

    def on_message_complete(self) -> None:
        answer, self.current = self.current, Answer()
        end = self.wire.find(b"\r\n\r\n") + 4
        length = int(answer.header("Content-Length") or 0) if not self.head_only else 0
        if answer.header("Transfer-Encoding") is None:
            answer.raw = bytes(self.wire[: end + length])
            del self.wire[: end + length]
        else:  # chunked: the rest of what arrived so far is this answer's
            answer.raw, self.wire = bytes(self.wire), bytearray()
        self.answers.append(answer)


def request(
    method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: gateway.test"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
