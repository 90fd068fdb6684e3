"""A gateway maintenance API on 127.0.0.1 whose behaviour a test switches phase by phase.

Raw sockets rather than an HTTP framework, so that it can misbehave the way a network does:
refuse connections (the port is closed), stall past the client's timeout, send the headers
and half the body and then reset the connection, drip the whole reply a byte at a time, or
send a body that never ends.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["Call", "FaultServer", "Mode", "caller_pid"]


class Mode(StrEnum):
    """How the server answers ``/getRegistry``."""

    OK = "ok"
    DOWN = "down"  # nothing listens: connections are refused
    HTTP_500 = "http-500"
    GARBAGE = "garbage"  # 200, a body that is not JSON
    RESULT_FALSE = "result-false"
    NO_DATA = "no-data"  # 200 result: true without data (an unknown maintenance path)
    SLOW = "slow"  # answers after the client gave up
    RESET = "reset"  # headers and half the body, then a TCP reset
    FLAP = "flap"  # good and bad answers in turn
    # The hostile ones; /register gets them too.
    DRIP = "drip"  # the whole reply, status line included, one byte per ``drip_seconds``
    ENDLESS = "endless"  # 200, chunked, 64 KiB chunks as fast as the client reads, never ending
    HUGE = "huge"  # 200, Content-Length: 100 MB, and the bytes to match
    DEEP = "deep"  # 200, a well-formed reply nested 200,000 levels deep


HOSTILE = frozenset({Mode.DRIP, Mode.ENDLESS, Mode.HUGE, Mode.DEEP})
HUGE_SIZE = 100 * 1000 * 1000
DEEP_LEVELS = 200_000


# The bad answers a flapping gateway cycles through, one good answer between each.
FLAP_CYCLE = (Mode.OK, Mode.HTTP_500, Mode.OK, Mode.RESET, Mode.OK, Mode.GARBAGE)


@dataclass(frozen=True)
class Call:
    """One request the server received."""

    at: float  # time.monotonic()
    path: str
    query: dict[str, list[str]]
    answered: Mode  # what it got (for FLAP: the mode of this turn)
    pid: int | None  # the caller's process, when ``track_pids`` is on


class FaultServer:
    """Serves the maintenance API (``/getRegistry``, ``/register``) in the current :attr:`mode`.

    Args:
        reply: the ``/getRegistry`` reply in ``Mode.OK``; change it with :attr:`reply`.
        slow_seconds: how long ``Mode.SLOW`` stalls before answering.
        drip_seconds: the pause between two bytes in ``Mode.DRIP``.
        track_pids: record the caller's PID for every call (Linux, via ``/proc``).

    Attributes:
        sent: bytes of body sent in the hostile modes, by call (in call order).
        dripping: connections ``Mode.DRIP`` is still dripping into.
    """

    def __init__(
        self,
        reply: dict[str, Any],
        *,
        slow_seconds: float = 1.0,
        drip_seconds: float = 0.05,
        track_pids: bool = False,
    ) -> None:
        self.replies: tuple[dict[str, Any], ...] = (reply,)
        self._turn = itertools.count()
        self.slow_seconds = slow_seconds
        self.drip_seconds = drip_seconds
        self.sent: list[int] = []
        self.dripping = 0
        self.track_pids = track_pids
        self.calls: list[Call] = []
        self._mode = Mode.OK
        self._flap = itertools.cycle(FLAP_CYCLE)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self.port = 0

    # -- control -----------------------------------------------------------------------------

    def start(self) -> FaultServer:
        """Listen on a free port of 127.0.0.1 and serve in a daemon thread."""
        self._listen()
        return self

    def stop(self) -> None:
        """Stop serving and wait for the connection threads (a stalled answer is cut short)."""
        self._stopping.set()
        self._close_listener()
        for thread in list(self._threads):
            thread.join(5)

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def mode(self) -> Mode:
        """The current behaviour; switching to or from ``Mode.DOWN`` closes or reopens the port."""
        return self._mode

    @mode.setter
    def mode(self, mode: Mode) -> None:
        if mode is Mode.DOWN and self._mode is not Mode.DOWN:
            self._close_listener()
        elif mode is not Mode.DOWN and self._mode is Mode.DOWN:
            self._listen(self.port)
        self._mode = mode

    @property
    def reply(self) -> dict[str, Any]:
        """The ``/getRegistry`` reply in ``Mode.OK`` (the first, if several alternate)."""
        return self.replies[0]

    @reply.setter
    def reply(self, reply: dict[str, Any]) -> None:
        self.replies = (reply,)

    def alternate(self, *replies: dict[str, Any]) -> None:
        """Answer good calls with each of ``replies`` in turn."""
        self.replies = replies

    @property
    def registry_api(self) -> str:
        """The ``SOAJS_REGISTRY_API`` value that points at this server."""
        return f"127.0.0.1:{self.port}"

    def registry_calls(self, since: float = 0.0) -> list[Call]:
        """The ``/getRegistry`` calls received at or after ``since`` (monotonic)."""
        with self._lock:
            return [c for c in self.calls if c.path == "/getRegistry" and c.at >= since]

    # -- serving -----------------------------------------------------------------------------

    def _listen(self, port: int = 0) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        listener.settimeout(0.05)
        self.port = listener.getsockname()[1]
        self._listener = listener
        thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._threads.append(thread)
        thread.start()

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopping.is_set() and self._listener is listener:
            try:
                conn, peer = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed
            thread = threading.Thread(target=self._serve, args=(conn, peer), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        pid = caller_pid(peer[1], self.port) if self.track_pids else None
        with conn:
            conn.settimeout(5)
            request = _read_request(conn)
            if request is None:
                return
            path, query, body = request
            mode = self._mode
            if mode is Mode.FLAP:
                with self._lock:
                    mode = next(self._flap)
            with self._lock:
                self.calls.append(Call(time.monotonic(), path, query, mode, pid))
            if mode in HOSTILE:
                self._hostile(conn, mode)
            elif path == "/register":
                payload = json.loads(body or b"{}")
                _send_json(conn, 200, {"result": True, "data": {"name": payload.get("name")}})
            elif path == "/getRegistry":
                self._answer(conn, mode)
            else:
                _send_json(conn, 200, {"result": True})

    def _answer(self, conn: socket.socket, mode: Mode) -> None:
        if mode is Mode.SLOW:
            self._stopping.wait(self.slow_seconds)
            mode = Mode.OK
        if mode is Mode.OK:
            replies = self.replies
            _send_json(conn, 200, replies[next(self._turn) % len(replies)])
        elif mode is Mode.HTTP_500:
            _send_json(conn, 500, {"result": False, "errors": {"codes": [500]}})
        elif mode is Mode.GARBAGE:
            _send(conn, 200, b"\x00\xff<html>not json", "application/json")
        elif mode is Mode.RESULT_FALSE:
            _send_json(conn, 200, {"result": False, "errors": {"codes": [207]}})
        elif mode is Mode.NO_DATA:
            _send_json(conn, 200, {"result": True})
        elif mode is Mode.RESET:
            body = json.dumps(self.reply).encode()
            head = _head(200, len(body), "application/json")
            conn.sendall(head + body[: len(body) // 2])
            # SO_LINGER with a zero timeout turns close() into a TCP RST.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def _hostile(self, conn: socket.socket, mode: Mode) -> None:
        """Answer in one of the hostile modes until done, the client leaves, or ``stop()``."""
        sent = 0
        try:
            if mode is Mode.DRIP:
                with self._lock:
                    self.dripping += 1
                try:
                    data = json.dumps(self.reply).encode()
                    for byte in _head(200, len(data), "application/json") + data:
                        if self._stopping.wait(self.drip_seconds):
                            return
                        conn.sendall(bytes([byte]))
                        sent += 1
                finally:
                    with self._lock:
                        self.dripping -= 1
            elif mode is Mode.ENDLESS:
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n"
                )
                chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"
                while not self._stopping.is_set():
                    conn.sendall(chunk)
                    sent += 0x10000
            elif mode is Mode.HUGE:
                conn.sendall(_head(200, HUGE_SIZE, "application/json"))
                block = b" " * 0x10000
                while sent < HUGE_SIZE and not self._stopping.is_set():
                    conn.sendall(block[: HUGE_SIZE - sent])
                    sent += min(len(block), HUGE_SIZE - sent)
            else:
                body = b'{"result":true,"data":' + b"[" * DEEP_LEVELS + b"]" * DEEP_LEVELS + b"}"
                conn.sendall(_head(200, len(body), "application/json") + body)
                sent = len(body)
        except OSError:
            pass  # the client gave up, as it should
        finally:
            with self._lock:
                self.sent.append(sent)


def _read_request(conn: socket.socket) -> tuple[str, dict[str, list[str]], bytes] | None:
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = conn.recv(65536)
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    target = lines[0].split(" ")[1]
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    url = urlsplit(target)
    return url.path, parse_qs(url.query), body


def _head(status: int, length: int, content_type: str) -> bytes:
    return (
        f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
    ).encode()


def _send(conn: socket.socket, status: int, body: bytes, content_type: str) -> None:
    with contextlib.suppress(OSError):  # the client may have given up already
        conn.sendall(_head(status, len(body), content_type) + body)


def _send_json(conn: socket.socket, status: int, payload: object) -> None:
    _send(conn, status, json.dumps(payload).encode(), "application/json")


def caller_pid(peer_port: int, server_port: int) -> int | None:
    """The PID of the process that owns the client end of a loopback TCP connection (Linux)."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        remote_port = int(fields[2].rsplit(":", 1)[1], 16)
        if local_port == peer_port and remote_port == server_port:
            inode = fields[9]
            break
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        with contextlib.suppress(OSError):
            for fd in fd_dir.iterdir():
                with contextlib.suppress(OSError):
                    if fd.readlink().as_posix() == target:
                        return int(fd_dir.parent.name)
    return None
