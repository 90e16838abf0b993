"""SwiftChat's WebSocket edge: the listener, the handshake, auth, the flood limit, one action per frame.

``WebSocketServer`` runs a ``websockets`` server on an event loop in one
background thread, which swiftchat.py starts beside its HTTP server; the
loop is the chat core's (swiftchat_core.py), which holds who is connected
and where. ``WebSocketEdge.handle`` serves one connection from its handshake
to its close: it waits for ``auth``, then reads frames and runs one action
per frame type (``ACTIONS``); an action checks the frame's fields and asks
the core to act. Errors become error frames here, and only here: the core
and the store raise ApiError or their own named exceptions (``WS_ERRORS``).

Everything here runs on the event loop. Store calls go through the core's
``read`` and ``write``, which run them on other threads, so the loop never
waits on a database lock. The README says why websockets runs beside
threads rather than alone.
"""

import asyncio
import concurrent.futures
import contextlib
import errno
import http
import logging
import socket
import threading
import time

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

import protocol
from accounts import InvalidToken
from protocol import ApiError, bad_request, encode, now
from store import (Banned, Blocked, ClientIdReused, DatabaseBusy, DatabaseReadOnly,
                   DatabaseUnavailable, DiskFull, Muted, OnlyModeratorsPost, TooManyReactions)
from swiftchat_core import (CannotChangeMessage, Client, MessageNotFound, NotAMember,
                            RoomNotFound, by_role, delete_message, edit_message,
                            index_for_search, join_room, mark_read, react, replay, sweep_uploads,
                            updated_data, visible_room, watch_sessions)

__all__ = ["WebSocketServer", "WebSocketEdge", "ACTIONS", "MAX_FRAME", "MAX_QUEUED"]

log = logging.getLogger("swiftchat.ws")


def not_a_failed_handshake(record):
    """Drop websockets' "opening handshake failed" (with its traceback), logged for every
    connection that goes before finishing its handshake: a port scan, a client that gave up,
    a flood of silent sockets. That is the client's doing, not the server's, and one line each
    filled 43 MB of log in 20 s of an attack.
    """
    return record.getMessage() != "opening handshake failed"


# The logger websockets writes to for our server (serve()'s documented `logger` argument).
protocol_log = logging.getLogger("swiftchat.ws.protocol")
protocol_log.setLevel(logging.WARNING)  # its INFO lines (a connection opened...) are noise here
protocol_log.addFilter(not_a_failed_handshake)

MAX_FRAME = 64 * 1024  # a larger frame closes the connection with 1009
MAX_QUEUED = 1024 * 1024  # bytes waiting to be sent to one client before it is dropped
POLICY_VIOLATION = 1008

# What the store's named failures tell a WebSocket client ("Request failed", error).
WS_ERRORS = {
    DatabaseBusy: "Database busy",
    DatabaseReadOnly: "Database is read-only",
    DiskFull: "Disk full",
    DatabaseUnavailable: "Database unavailable",
    ClientIdReused: "client_id already used for another message",
    Banned: "You are banned from this room",
    Blocked: "You cannot do this to this user",
    MessageNotFound: "Message not found",
    RoomNotFound: "Room not found",
    CannotChangeMessage: "You cannot change this message",
    NotAMember: "You are not a member of this room",
    Muted: "You are muted in this room",
    OnlyModeratorsPost: "Only moderators can post in this room",
    TooManyReactions: "Too many reactions",
}


class TokenBucket:
    """A flood limit: `rate` frames a second on average, bursts of up to 2 x rate.

    The bucket refills continuously, so there is no calendar second or minute
    at whose edge a client could send twice its allowance. A rate of 0 turns
    it off. Used on the event loop only.
    """

    __slots__ = ("rate", "capacity", "tokens", "clock", "updated")  # one per connection, as Client

    def __init__(self, rate, clock=time.monotonic):
        self.rate = rate
        self.capacity = 2 * rate
        self.tokens = self.capacity
        self.clock = clock
        self.updated = clock()

    def take(self):
        """Spend one token; False when there is none left."""
        if not self.rate:
            return True
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def forget_handshake(websocket):
    """Empty the opening handshake's headers once admit() has read the address from them.

    websockets keeps the handshake's request and response (its documented
    ``request`` and ``response`` attributes) for the connection's whole
    life, and reads neither after the handshake; their headers are about
    3.5 KiB of strings, lists and dicts per connection (tracemalloc), while
    SwiftChat reads one header, X-Forwarded-For, once. ``Headers.clear()``
    (a documented method) lets them go, as websockets' memory guide asks
    ("don't keep references to data that you don't need anymore"): 2,000
    idle connections, 14.0 KiB each instead of 17.9 (bench_swiftchat.py
    --only idle). To switch it off, do not call it.
    """
    websocket.request.headers.clear()
    websocket.response.headers.clear()


def frame_fields(frame):
    """A frame's fields, read from the top level or from its `data` object."""
    nested = frame.get("data")
    return {**nested, **frame} if isinstance(nested, dict) else frame


class WebSocketEdge:
    """One handler per connection, and one action per frame type, over the chat core."""

    def __init__(self, core, accounts, auth_timeout=30.0, rate=20, clock=time.monotonic,
                 trusted_proxies=(), max_unauthenticated=20):
        self.core = core
        self.accounts = accounts
        self.auth_timeout = auth_timeout
        self.rate = rate  # frames per second per connection; 0 = no limit
        self.clock = clock
        self.trusted_proxies = trusted_proxies
        self.max_unauthenticated = max_unauthenticated  # per client address; 0 = no limit
        self.connection_count = 0  # connections past the handshake, authenticated or not
        self._unauthenticated = {}  # limit key -> its connections not authenticated yet

    # -- one connection, from handshake to close -----------------------------------

    async def handle(self, websocket):
        self.connection_count += 1
        try:
            client = await self.admit(websocket)
            if client is not None:
                await self.serve(client, TokenBucket(self.rate, self.clock))
        finally:
            self.connection_count -= 1

    async def admit(self, websocket):
        """The authenticated Client of a new connection, or None once it is closed.

        An address may keep at most max_unauthenticated connections
        waiting to authenticate, so one machine cannot hold thousands of
        sockets (and file descriptors) open without an account. One more
        closes that address's oldest waiting connection, not the new one:
        idle sockets must never keep out a client that authenticates at
        once (CONTRACT 1.3). An address is counted by its limit_key.
        """
        address = protocol.limit_key(protocol.client_address(
            websocket.remote_address[0],
            ", ".join(websocket.request.headers.get_all("X-Forwarded-For")), self.trusted_proxies))
        forget_handshake(websocket)
        waiting = self._unauthenticated.setdefault(address, {})  # a dict keeps arrival order
        if self.max_unauthenticated and len(waiting) >= self.max_unauthenticated:
            oldest = next(iter(waiting))
            del waiting[oldest]  # its own handler ends when the close does
            self.core.in_background(oldest.close(POLICY_VIOLATION,
                                                 "too many unauthenticated connections"))
        waiting[websocket] = None
        try:
            return await self.authenticate(websocket)
        except ConnectionClosed:  # gone before it said who it was, or closed as the oldest
            return None
        finally:
            waiting.pop(websocket, None)
            # `is`: once emptied and removed, a newer set of this address's may be in its place.
            if not waiting and self._unauthenticated.get(address) is waiting:
                del self._unauthenticated[address]

    async def authenticate(self, websocket):
        """Wait for the auth frame; return a Client, or None after closing."""
        try:
            text = await asyncio.wait_for(websocket.recv(), self.auth_timeout)
        except asyncio.TimeoutError:
            await websocket.close(POLICY_VIOLATION, "authentication timeout")
            return None
        try:
            frame = protocol.parse_json_object(text)
            if frame.get("type") != "auth":
                raise ApiError(401, "Authentication required", "First message must be auth")
            session = await self.session_of(frame_fields(frame).get("token"))
            if session is None:
                raise ApiError(401, "Authentication failed", "Invalid or expired token")
            if session.user["must_change_password"]:  # CONTRACT 1.3
                raise ApiError(403, "Authentication failed", "Password change required")
        except ApiError as exc:
            await websocket.send(encode(exc.message, error=exc.error))
            await websocket.close(POLICY_VIOLATION, exc.error)
            return None
        return Client(websocket, session, self.accounts.expires_at(session))

    async def session_of(self, token):
        """The live session of a token, or None."""
        if not isinstance(token, str):
            return None
        try:
            return await self.core.read(self.accounts.session_for_token, token, False, False)
        except InvalidToken:
            return None

    async def serve(self, client, bucket):
        """Read and act on an authenticated client's frames until it goes."""
        self.core.connect(client)
        log.info("ws %s connected from %s", client.user_id, client.websocket.remote_address[0])
        try:
            await client.reply("WebSocket authentication successful",
                               {"user_id": client.user_id, "status": "connected"})
            async for text in client.websocket:
                await self.dispatch(client, bucket, text)
        except ConnectionClosed:
            pass
        finally:
            self.core.disconnect(client)
            log.info("ws %s disconnected (%s)", client.user_id, client.websocket.close_code)

    async def dispatch(self, client, bucket, text):
        """Run one frame's action; any failure becomes an error frame, never a close."""
        if client.session_over:  # being closed with 4001: nothing more is done for it
            return
        try:
            if not bucket.take():  # a flood: not even parsed
                raise bad_request("Rate limit exceeded")
            frame = protocol.parse_json_object(text)
            frame_type = frame.get("type")
            action = ACTIONS.get(frame_type) if isinstance(frame_type, str) else None
            if action is None:
                raise bad_request(f"Unknown message type: {frame_type}")
            if action is not WebSocketEdge.send_message:
                await answered(client.saving)
            await action(self, client, frame_fields(frame))
        except ApiError as exc:
            await client.reply(exc.message, error=exc.error)
        except tuple(WS_ERRORS) as exc:
            await client.reply("Request failed", error=WS_ERRORS[type(exc)])
        except ConnectionClosed:
            raise
        except Exception:
            log.exception("ws action failed for %s", client.user_id)
            await client.reply("Request failed", error="Internal server error")

    # -- actions: one per frame type (ACTIONS) -----------------------------------------

    async def join_room(self, client, fields):
        room_id = protocol.text_field(fields, "room_id")
        if client.room_id == room_id:
            raise bad_request("You are already in this room")
        since = protocol.message_id(fields, "since")
        room = await join_room(self.core, client.user, room_id)
        self.core.join(client, room_id, by_admin_role=by_role(room, client.user_id))
        if room["visibility"] == "private":
            try:  # removed (or demoted) while this join was on its way
                await self.core.read(visible_room, self.core.store, room_id, client.user_id)
            except RoomNotFound:
                self.core.leave(client)
                raise
        joined = {"type": "room_joined", "room_id": room_id, "user_id": client.user_id}
        if since is None:
            await client.reply("Room joined successfully", joined)
        else:
            await replay(self.core, client, room_id, since, joined)

    async def leave_room(self, client, fields):
        room_id = self.core.leave(client)
        if room_id is None:
            raise bad_request("You are not in any room")
        await client.reply("Room left successfully",
                           {"type": "room_left", "room_id": room_id, "user_id": client.user_id})

    async def send_message(self, client, fields):
        if client.room_id is None:
            raise bad_request("You are not in any room")
        (content, attachments), client_id = protocol.message_body(fields), protocol.client_id(fields)
        # Not awaited: the message takes its place in the writer's line now,
        # and the connection's next frames are read while it is saved. The
        # core answers the sender once it is committed, in commit order.
        reply_to = protocol.reply_to(fields)
        author = {"id": client.user_id, "username": client.username}
        client.saving = self.core.post(author, client.room_id, content, client_id, sender=client,
                                       attachments=attachments, reply_to=reply_to)

    async def typing(self, client, fields):
        if client.room_id is None:
            raise bad_request("You are not in any room")
        self.core.typing(client, self.clock())

    async def edit_message(self, client, fields):
        message_id, content = required_message_id(fields), protocol.content(fields)
        edited = await edit_message(self.core, client.user, message_id, content, sender=client)
        await client.reply("Message updated", updated_data(edited))

    async def delete_message(self, client, fields):
        deleted = await delete_message(self.core, client.user, required_message_id(fields),
                                       sender=client)
        await client.reply("Message deleted", {"type": "message_deleted", **deleted})

    async def react(self, client, fields):
        await self._react(client, fields, True, "Reaction added")

    async def unreact(self, client, fields):
        await self._react(client, fields, False, "Reaction removed")

    async def _react(self, client, fields, adding, answer):
        message_id, emoji = required_message_id(fields), protocol.emoji(fields.get("emoji"))
        data = await react(self.core, client.user, message_id, emoji, adding, sender=client)
        await client.reply(answer, data)

    async def mark_read(self, client, fields):
        room_id = protocol.text_field(fields, "room_id")
        message_id = required_message_id(fields, "message_id")
        marker = await mark_read(self.core, client.user_id, room_id, message_id, sender=client)
        await client.reply("Read marker updated", {"type": "read_marker", **marker})

    async def ping(self, client, fields):
        await client.reply("Pong response", {"type": "pong", "timestamp": now()})

    async def auth_again(self, client, fields):
        """A fresh token of the connection's own session renews it in place; nothing else does."""
        session = await self.session_of(fields.get("token"))
        if session is None or session.id != client.session_id:
            raise bad_request("Already authenticated")
        await client.reply("WebSocket authentication successful",
                           {"user_id": client.user_id, "status": "connected"})


# Frame type -> the action that answers it. A new frame type is one method and one row.
ACTIONS = {
    "join_room": WebSocketEdge.join_room,
    "leave_room": WebSocketEdge.leave_room,
    "send_message": WebSocketEdge.send_message,
    "ping": WebSocketEdge.ping,
    "typing": WebSocketEdge.typing,
    "edit_message": WebSocketEdge.edit_message,
    "delete_message": WebSocketEdge.delete_message,
    "mark_read": WebSocketEdge.mark_read,
    "react": WebSocketEdge.react,
    "unreact": WebSocketEdge.unreact,
    "auth": WebSocketEdge.auth_again,
}


async def answered(saving):
    """Wait until the connection's last message (a Future, or None) has been answered.

    The order rule of a connection's answers: an action waits for the
    message sent before it, so its answer comes after that message's
    message_sent. send_message itself does not wait: the writer's line
    keeps a connection's messages in the order they came.
    """
    if saving is not None and not saving.done():
        await asyncio.wait((saving,))


def required_message_id(fields, name="id"):
    message_id = protocol.message_id(fields, name)
    if message_id is None:
        raise bad_request(f"{name} is required")
    return message_id


class Corks:
    """What one turn of the event loop writes to a connection, sent in one system call.

    Why: websockets.broadcast writes a frame to each connection as it goes,
    and asyncio sends it at once: one send() per recipient per message, the
    loop's largest cost in a busy room. Held until the loop's next turn,
    the frames of every message saved meanwhile leave together (room of
    100: server CPU per delivery 9-12 us -> 4-4.5 us, bench_swiftchat.py).
    One callback a turn flushes every connection that has frames held.
    To switch it off, pass ServerConnection as serve()'s create_connection.
    """

    def __init__(self):
        self._pending = []  # CorkedTransports with frames held for this turn

    def flush_soon(self, transport):
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush_all)
        self._pending.append(transport)

    def _flush_all(self):
        pending, self._pending = self._pending, []
        for transport in pending:
            transport.flush()


class CorkedTransport(asyncio.Transport):
    """An asyncio Transport that holds writes until Corks flushes them, then writes them at once.

    It stands between a websockets connection and asyncio's own transport,
    speaking the documented Transport interface on both sides; write_eof
    and close send what is held first, abort drops it. After a flush, a
    client with more than MAX_QUEUED bytes unsent (it stopped reading) is
    too_slow().
    """

    __slots__ = ("transport", "corks", "too_slow", "held")  # one per connection, as Client

    def __init__(self, transport, corks, too_slow):
        super().__init__()
        self.transport = transport
        self.corks = corks
        self.too_slow = too_slow
        self.held = []

    def write(self, data):
        if not self.held:
            self.corks.flush_soon(self)
        self.held.append(data)

    def flush(self):
        # Once per connection per turn in a busy room: a frame alone is written as it is,
        # not joined (with broadcast_to's one pass, room of 100: 6.57 -> 6.31 us of server
        # CPU per delivery, medians of 8 interleaved rounds).
        held, transport = self.held, self.transport
        if held:
            data = held[0] if len(held) == 1 else b"".join(held)
            held.clear()
            if not transport.is_closing():
                transport.write(data)
                if transport.get_write_buffer_size() > MAX_QUEUED:
                    self.too_slow()

    def write_eof(self):
        self.flush()
        self.transport.write_eof()

    def close(self):
        self.flush()
        self.transport.close()

    def abort(self):
        self.held.clear()
        self.transport.abort()

    def get_write_buffer_size(self):
        return self.transport.get_write_buffer_size() + sum(map(len, self.held))

    # The rest is the transport's own.
    def can_write_eof(self):
        return self.transport.can_write_eof()

    def is_closing(self):
        return self.transport.is_closing()

    def get_extra_info(self, name, default=None):
        return self.transport.get_extra_info(name, default)

    def set_write_buffer_limits(self, high=None, low=None):
        self.transport.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self):
        return self.transport.get_write_buffer_limits()

    def pause_reading(self):
        self.transport.pause_reading()

    def resume_reading(self):
        self.transport.resume_reading()

    def is_reading(self):
        return self.transport.is_reading()


class Admission:
    """How many TCP connections the WebSocket port holds, before any handshake is read.

    Every connection is a file descriptor from the moment it is accepted,
    and one that never sends its handshake holds it for the opening
    timeout. So: at most `most` connections at once (the cap that
    swiftchat.py fitted under the file limit, plus HANDSHAKE_ROOM so that
    a handshake over the cap can still be answered 503); one over it is
    dropped at once. And at most `per_peer` of them still in their
    handshake from one address (counted by its limit_key; a trusted
    proxy's clients are told apart after the handshake, by the edge): one
    more aborts that address's oldest, so silent sockets cannot lock their
    own address out (CONTRACT 1.3). 0 means no limit.
    """

    HANDSHAKE_ROOM = 50

    def __init__(self, most, per_peer, trusted_proxies):
        self.most = most + self.HANDSHAKE_ROOM if most else 0
        self.per_peer = per_peer
        self.trusted_proxies = trusted_proxies
        self.open = 0
        self._handshaking = {}  # limit key -> its connections still in their handshake, oldest first

    def arrived(self, connection):
        """Count a new connection; False if it must be dropped."""
        if self.most and self.open >= self.most:
            return False
        peer = connection.remote_address[0] if connection.remote_address else ""
        key = protocol.limit_key(peer)
        if self.per_peer and len(self._handshaking.get(key, ())) >= self.per_peer \
                and not protocol.is_in(peer, self.trusted_proxies):
            self.abort_oldest(key)
        self.open += 1
        self._handshaking.setdefault(key, {})[connection] = None  # a dict keeps arrival order
        connection.handshaking_from = key
        return True

    def abort_oldest(self, key):
        """Drop the connection of this key that has been in its handshake the longest."""
        oldest = next(iter(self._handshaking[key]))
        self.shook_hands(oldest)  # its connection_lost, soon, counts it out of `open`
        oldest.transport.abort()

    def shook_hands(self, connection):
        key, connection.handshaking_from = connection.handshaking_from, None
        if key is not None:
            handshaking = self._handshaking[key]
            del handshaking[connection]
            if not handshaking:
                del self._handshaking[key]

    def left(self, connection):
        self.shook_hands(connection)
        self.open -= 1


def no_delay(transport):
    """Turn off Nagle's algorithm on a connection's socket (TCP_NODELAY).

    Why: asyncio does this itself only for a socket whose protocol number
    says TCP, and one accepted from socket.create_server's listener says 0.
    With Nagle on, a frame to a member who only listens waited for the
    member's delayed ACK, up to 40 ms: in a room of 10 with ten messages
    in flight, listeners heard each message 9 ms after its sender's
    acknowledgement, 40 ms at the 99th percentile (bench_swiftchat.py,
    WS room of 10).
    """
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):  # a peer already gone: connection_lost follows
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def corked_connections(corks, admission):
    """A ServerConnection class whose writes go through Corks (serve()'s create_connection).

    It also counts itself in `admission` from the moment it is accepted.
    """

    class CorkedConnection(ServerConnection):
        dropping = None  # the task closing this connection for being too slow
        handshaking_from = None  # the peer's limit key while its handshake is under way
        counted = False

        def connection_made(self, transport):
            no_delay(transport)
            super().connection_made(CorkedTransport(transport, corks, self.drop_slow))
            self.counted = admission.arrived(self)
            if not self.counted:
                transport.abort()

        def connection_lost(self, exc):
            super().connection_lost(exc)
            if self.counted:
                admission.left(self)

        def drop_slow(self):
            """Close a client that stopped reading; its queue is not waited on."""
            if self.dropping is None:
                log.warning("ws %s dropped: over %d bytes unread", self.remote_address[0], MAX_QUEUED)
                self.dropping = asyncio.create_task(self.close(POLICY_VIOLATION, "too slow"))

    return CorkedConnection


class WebSocketServer:
    """The WebSocket listener and the event loop's thread.

    start() returns once the port is bound (or raises the bind error);
    stop() closes every connection with 1001 and ends the thread. Beyond
    max_connections at once (0: no cap) a handshake is answered with HTTP
    503; out_of_files() is called when accepting fails for want of file
    descriptors (it logs, at most once in a while). A client that lets
    more than MAX_QUEUED bytes pile up unread is closed with 1008 `too
    slow` (CorkedTransport, made for every connection here).
    """

    def __init__(self, edge, host, port, max_connections=10_000, out_of_files=lambda: None):
        self.edge = edge
        self.core = edge.core
        self.host = host
        self.port = port
        self.max_connections = max_connections
        self.out_of_files = out_of_files
        self.admission = Admission(max_connections, edge.max_unauthenticated, edge.trusted_proxies)
        self._server = None
        self._thread = None

    def start(self):
        ready = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="swiftchat-ws", daemon=True)
        self._thread.start()
        self.port = ready.result()

    def _run(self, ready):
        try:
            asyncio.run(self._serve(ready))
        except Exception as exc:  # a bind error, reported to start()
            if not ready.done():
                ready.set_exception(exc)
            else:
                log.exception("WebSocket loop stopped")

    async def _serve(self, ready):
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # "::" takes IPv4 too where the system maps it (asyncio alone would not).
        listening = socket.create_server((self.host, self.port), family=family, backlog=128,
                                         dualstack_ipv6=family == socket.AF_INET6
                                         and socket.has_dualstack_ipv6())
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(self._loop_error)
        # The threads the core's reads run on (asyncio.to_thread), named.
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(
            thread_name_prefix="swiftchat-reader"))
        # Keepalive pings drop a dead peer within 40 s; a peer that does not
        # answer a close within 3 s is cut off, so shutdown stays quick.
        # compression=None: with permessage-deflate (which browsers ask for)
        # a broadcast is compressed once per recipient instead of encoded
        # once, and each connection keeps zlib state of its own; chat frames
        # are small enough that compressing them saves little.
        async with serve(self._handle, sock=listening, max_size=MAX_FRAME,
                         process_request=self._admit, compression=None, ping_interval=20,
                         ping_timeout=20, close_timeout=3, logger=protocol_log,
                         create_connection=corked_connections(Corks(), self.admission)) as server:
            self.core.loop = loop
            self._server = server
            ready.set_result(listening.getsockname()[1])
            # The loop's chores, each every so often, until the server closes.
            chores = [asyncio.create_task(chore(self.core))
                      for chore in (watch_sessions, index_for_search, sweep_uploads)]
            await server.wait_closed()
            for chore in chores:
                chore.cancel()
            self.core.stop_background()

    def _admit(self, connection, request):
        """Refuse a handshake beyond the cap (websockets' process_request hook)."""
        if self.max_connections and self.edge.connection_count >= self.max_connections:
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "Server busy\n")
        return None

    async def _handle(self, websocket):
        self.admission.shook_hands(websocket)
        await self.edge.handle(websocket)

    def _loop_error(self, loop, context):
        # asyncio reports each failed accept; out of file descriptors, that
        # is one traceback a second for as long as it lasts.
        error = context.get("exception")
        if isinstance(error, OSError) and error.errno in (errno.EMFILE, errno.ENFILE):
            self.out_of_files()
        else:
            loop.default_exception_handler(context)

    def stop(self):
        if self._server is not None:
            self.core.call(self._server.close)  # closes each connection with 1001
        if self._thread is not None:
            self._thread.join(timeout=10)
