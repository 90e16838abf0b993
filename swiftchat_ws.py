"""SwiftChat's real-time half: the WebSocket API, on an asyncio loop of its own.

``WebSocketServer`` runs a ``websockets`` server on an event loop in one
background thread, which swiftchat.py starts beside its HTTP server.
``ChatHub`` holds the live state: which user is connected (one connection
each) and which connection is in which room. That state is changed only on
the event loop; HTTP threads read who is online through ``online_users``,
under a lock, and reach the loop for anything else only through
``WebSocketServer.call``.

The loop never calls the store itself, because a store call may wait on a
database lock (another process writing, a backup): reads run on worker
threads through ``asyncio.to_thread`` (``ChatHub.read``), and writes on one
writer thread of their own (``ChatHub.queue_write``), which runs them one at
a time in the order the loop queued them. A chat message is not awaited:
its write is queued (``ChatHub.save_message``; messages that arrive while
one batch is being committed are committed together in the next) and the
connection's next frame is read at once; when the write is done,
``ChatHub.message_saved`` is called back on the loop, in commit order, and
acknowledges and broadcasts it. So messages are committed, acknowledged and
broadcast in one order. A write that has waited in that line for
``QUEUE_TIMEOUT`` seconds fails at once, and the store gives a write at most
``WRITE_TIMEOUT`` more, so a send fails within two seconds.

Frames to a whole room are encoded once and handed to
``websockets.broadcast``, which queues them without waiting, so a slow or
dead client never holds up the rest; a client that lets more than
``MAX_QUEUED`` bytes pile up unread is closed with 1008 ``too slow``.
"""

import asyncio
import concurrent.futures
import errno
import functools
import http
import inspect
import logging
import socket
import threading
import time

from websockets.asyncio.server import broadcast, serve
from websockets.exceptions import ConnectionClosed

import protocol
from accounts import InvalidToken
from protocol import ApiError, bad_request, encode, iso, now
from store import (ClientIdReused, DatabaseBusy, DatabaseReadOnly, DatabaseUnavailable, DiskFull,
                   StoreError)

__all__ = ["ChatHub", "WebSocketServer", "MAX_FRAME", "MAX_QUEUED"]

log = logging.getLogger("swiftchat.ws")

MAX_FRAME = 64 * 1024  # a larger frame closes the connection with 1009
MAX_QUEUED = 1024 * 1024  # bytes waiting to be sent to one client before it is dropped
QUEUE_TIMEOUT = 1.0  # seconds a write may wait in line for the writer thread
REPLAY_LIMIT = 100  # messages replayed after join_room with `since`
TYPING_INTERVAL = 2.0  # seconds between two user_typing frames of one user
SESSION_CHECK = 1.0  # seconds between two looks for sessions ended elsewhere or grown too old
POLICY_VIOLATION = 1008
REPLACED = 4000  # the user logged in again on a newer connection
SESSION_OVER = 4001  # the connection's session ended (logout, new password) or passed its age

# What the store's named failures tell a WebSocket client ("Request failed", error).
WS_ERRORS = {
    DatabaseBusy: "Database busy",
    DatabaseReadOnly: "Database is read-only",
    DiskFull: "Disk full",
    DatabaseUnavailable: "Database unavailable",
    ClientIdReused: "client_id already used for another message",
}


class TokenBucket:
    """A flood limit: `rate` frames a second on average, bursts of up to 2 x rate.

    The bucket refills continuously, so there is no calendar second or minute
    at whose edge a client could send twice its allowance. A rate of 0 turns
    it off. Used on the event loop only.
    """

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


class Client:
    """One authenticated connection: its socket, its user, its room and its flood limit."""

    def __init__(self, websocket, session, expires_at, bucket):
        self.websocket = websocket
        self.user_id = session.user["id"]
        self.username = session.user["username"]
        self.session_id = session.id
        self.expires_at = expires_at  # Unix seconds: when the session passes its maximum age
        self.room_id = None
        self.bucket = bucket
        self.dropping = None  # the task closing a client that fell too far behind
        self.held = None  # while a replay is read: [(data, text)] of live frames held back
        self.typed_at = float("-inf")  # when the room was last told this user is typing
        self.saving = None  # the Future of this client's last queued message

    def drop_slow(self):
        """Close a client that stopped reading; its queue is not waited on."""
        if self.dropping is None:
            log.warning("ws %s dropped: over %d bytes unread", self.user_id, MAX_QUEUED)
            self.dropping = asyncio.create_task(
                self.websocket.close(POLICY_VIOLATION, "too slow"))

    async def reply(self, message, data=None, error=None):
        await self.websocket.send(encode(message, data, error))

    def reply_now(self, message, data=None, error=None):
        """Queue a frame for this client without waiting (for callbacks, which cannot await)."""
        broadcast([self.websocket], encode(message, data, error))

    def event(self, event_type, room_id):
        """The data of a frame that tells a room about this user."""
        return {"type": event_type, "user_id": self.user_id,
                "username": self.username, "room_id": room_id}


def broadcast_to(clients, message, data):
    """Send one frame to many clients: encoded once, queued without waiting.

    websockets.broadcast queues however much a client leaves unread; the
    corked connection closes a client that falls MAX_QUEUED behind.
    """
    text = encode(message, data)
    sockets = []
    for client in clients:
        if client.held is not None:  # its history is being replayed: this waits its turn
            client.held.append((data, text))
        else:
            sockets.append(client.websocket)
    broadcast(sockets, text)


def cork_writes(transport, flush_soon, too_slow):
    """Send what one turn of the event loop writes to this connection in one system call.

    Why: websockets.broadcast writes a frame to each transport as it goes,
    and asyncio sends it at once: one send() per recipient per message, the
    loop's largest cost in a busy room. Held until the loop's next turn, the
    frames of every message saved meanwhile leave together (room of 100:
    server CPU per delivery 9-12 us -> 4-4.5 us, measured with
    bench_swiftchat.py). flush_soon(flush) runs flush in the next turn,
    with every other connection's (one callback a turn, not one each).
    After a flush, a client with more than MAX_QUEUED bytes unsent is
    too_slow(). write_eof and close send what is held first; abort drops
    it, as it drops the transport's own buffer.
    """
    held = []
    write, write_eof, close = transport.write, transport.write_eof, transport.close

    def flush():
        if held:
            data = b"".join(held)
            held.clear()
            if not transport.is_closing():
                write(data)
                if transport.get_write_buffer_size() > MAX_QUEUED:
                    too_slow()

    def write_later(data):
        if not held:
            flush_soon(flush)
        held.append(data)

    def flush_then(action):
        def wrapper():
            flush()
            action()
        return wrapper

    transport.write = write_later
    transport.write_eof = flush_then(write_eof)
    transport.close = flush_then(close)


def run_callback(callback, message):
    try:
        callback(message)
    except Exception:
        log.exception("an on_message callback failed")


def message_data(frame_type, message):
    """The data of a message_sent or message_received frame (id None if it was not saved)."""
    return {"type": frame_type, "id": message["id"], "user_id": message["user_id"],
            "username": message["username"], "room_id": message["room_id"],
            "content": message["content"], "timestamp": message["timestamp"]}


def frame_fields(frame):
    """A frame's fields, read from the top level or from its `data` object."""
    nested = frame.get("data")
    return {**nested, **frame} if isinstance(nested, dict) else frame


class ChatHub:
    """Live chat state and the handler for each WebSocket connection."""

    def __init__(self, store, accounts, auth_timeout=30.0, rate=20, clock=time.monotonic,
                 trusted_proxies=(), max_unauthenticated=20):
        self.store = store
        self.accounts = accounts
        self.auth_timeout = auth_timeout
        self.rate = rate  # frames per second per connection; 0 = no limit
        self.clock = clock
        self.trusted_proxies = trusted_proxies
        self.max_unauthenticated = max_unauthenticated  # per client address; 0 = no limit
        self.connection_count = 0  # connections past the handshake, authenticated or not
        self._unauthenticated = {}  # client address -> its connections not authenticated yet
        self.clients = {}  # user_id -> Client; at most one connection per user
        self.rooms = {}  # room_id -> set of Clients in that room now
        self._clients_lock = threading.Lock()  # HTTP threads read self.clients
        self._closing = set()  # tasks closing replaced connections, kept alive until done
        self._writer = concurrent.futures.ThreadPoolExecutor(1, "swiftchat-ws-writer")
        self._unsaved = []  # [(message, its Future, then)] waiting for the batch being committed
        self._flushes = []  # corked connections' flushes for the loop's next turn
        self._committing = False  # whether a batch of messages is with the writer now
        # on_message callbacks run here, one at a time and in message order,
        # so a slow or failing callback never touches the loop.
        self._callbacks = []
        self._callback_runner = concurrent.futures.ThreadPoolExecutor(1, "swiftchat-callbacks")
        self.actions = {
            "join_room": self.join_room,
            "leave_room": self.leave_room,
            "send_message": self.send_message,
            "ping": self.ping,
            "typing": self.typing,
            "auth": self.auth_again,
        }

    def online_users(self, user_ids):
        """Those of user_ids with an authenticated connection. Safe from any thread."""
        with self._clients_lock:
            return {user_id for user_id in user_ids if user_id in self.clients}

    def close(self):
        """Let the writer and callback threads finish what they were given, then end them."""
        self._writer.shutdown(wait=True)
        self._callback_runner.shutdown(wait=True)

    # -- stored messages, from any source ------------------------------------

    def on_message(self, callback):
        """Call callback(message) after each stored message, on a thread of its own."""
        self._callbacks.append(callback)

    def _stored(self, message):
        for callback in self._callbacks:
            self._callback_runner.submit(run_callback, callback, dict(message))

    async def post(self, user, room_id, content, client_id=None):
        """Store a message from outside the WebSocket (REST, an embedding program).

        Ordered with WebSocket messages by the same writer thread; everyone
        live in the room hears it, its author's own connection included.
        Returns the stored message, with client_id and duplicate: true for
        a retry. Raises the store's errors.
        """
        echo = {} if client_id is None else {"client_id": client_id}

        def as_message(stored):
            return {"id": stored["id"], "room_id": room_id, "user_id": user["id"],
                    "username": user["username"], "content": stored["content"],
                    "timestamp": stored["timestamp"]}

        def tell_the_room(saving):  # in commit order, like message_saved
            if not saving.cancelled() and saving.exception() is None \
                    and not saving.result()["duplicate"]:
                message = as_message(saving.result())
                broadcast_to(self.rooms.get(room_id, set()), "Message sent successfully",
                             {**message_data("message_received", message), **echo})
                self._stored(message)

        stored = await self.save_message(room_id, user["id"], content, now(), client_id,
                                         then=tell_the_room)
        duplicate = {"duplicate": True} if stored["duplicate"] else {}
        return {**as_message(stored), **echo, **duplicate}

    # -- the store, off the loop -------------------------------------------

    async def read(self, function, *args):
        """Run a store read (or a token check) on a worker thread."""
        return await asyncio.to_thread(function, *args)

    def queue_write(self, function, *args):
        """Queue a store write (or a read that must fall in line) on the writer thread.

        Returns an asyncio Future; writes are done, and their futures
        resolved and called back, in the order they were queued.
        """
        queued = time.monotonic()

        def in_time():
            if time.monotonic() - queued > QUEUE_TIMEOUT:
                raise DatabaseBusy("waited too long for the writer thread")
            return function(*args)

        return asyncio.get_running_loop().run_in_executor(self._writer, in_time)

    async def write(self, function, *args):
        """Run a store write on the writer thread, after the writes asked for before it."""
        return await self.queue_write(function, *args)

    def save_message(self, room_id, user_id, content, timestamp, client_id, then):
        """Queue a chat message for the writer; return a Future of what add_message returns.

        then(future) is called on the loop once the message's batch is done,
        in the same turn as the batch's answer arrives, before any coroutine
        that was waiting resumes. Why not a done callback: that runs a turn
        later, and a since replay read in between would see a message that
        reaches the room (and the replaying client, live) only after it.

        Group commit: while one batch of messages is being committed, the
        messages that arrive wait, and the next batch takes them all in one
        transaction. An idle writer is given the first batch one loop turn
        later, so that every frame read in this turn joins it (without that,
        a window of ten in flight went as batches of one and nine). Under a
        light load each batch is one message; under a heavy one a commit is
        shared by many, and their frames leave in the same turn of the loop
        (server CPU per delivery, room of 500: 0.82x -> 0.60x the baseline).
        Messages keep their order: batches are committed, and their futures
        resolved, one after another.
        """
        saving = asyncio.get_running_loop().create_future()
        self._unsaved.append(((room_id, user_id, content, timestamp, client_id), saving, then))
        if not self._committing:
            self._committing = True
            asyncio.get_running_loop().call_soon(self._commit_unsaved)
        return saving

    def _commit_unsaved(self):
        batch, self._unsaved = self._unsaved, []
        self._committing = True
        committing = self.queue_write(self.store.add_messages, [message for message, _, _ in batch])
        committing.add_done_callback(functools.partial(self._committed, batch))

    def _committed(self, batch, committing):
        self._committing = False
        if self._unsaved:  # the writer starts on the next batch while this one is told
            self._commit_unsaved()
        if committing.cancelled():  # the server is stopping
            results = [None] * len(batch)
        elif committing.exception() is not None:
            results = [committing.exception()] * len(batch)
        else:
            results = committing.result()
        for (_, saving, then), result in zip(batch, results):
            if saving.cancelled():  # awaited by a task cancelled as the loop stops: no one to tell
                continue
            if result is None:
                saving.cancel()
            elif isinstance(result, Exception):
                saving.set_exception(result)
            else:
                saving.set_result(result)
            try:
                then(saving)
            except Exception:  # one message's failure must not leave the rest of its batch untold
                log.exception("telling about a saved message failed")

    def flush_soon(self, flush):
        """Run flush (a corked connection's) in the loop's next turn, with the others."""
        if not self._flushes:
            asyncio.get_running_loop().call_soon(self._flush_all)
        self._flushes.append(flush)

    def _flush_all(self):
        flushes, self._flushes = self._flushes, []
        for flush in flushes:
            flush()

    # -- one connection, from handshake to close ---------------------------

    async def handle(self, websocket):
        self.connection_count += 1
        try:
            await self.serve_connection(websocket)
        finally:
            self.connection_count -= 1

    async def serve_connection(self, websocket):
        address = protocol.client_address(
            websocket.remote_address[0],
            ", ".join(websocket.request.headers.get_all("X-Forwarded-For")), self.trusted_proxies)
        waiting = self._unauthenticated.get(address, 0)
        if self.max_unauthenticated and waiting >= self.max_unauthenticated:
            await websocket.close(POLICY_VIOLATION, "too many unauthenticated connections")
            return
        self._unauthenticated[address] = waiting + 1
        try:
            client = await self.authenticate(websocket)
        except ConnectionClosed:  # gone before it said who it was
            return
        finally:
            self._unauthenticated[address] -= 1
            if not self._unauthenticated[address]:
                del self._unauthenticated[address]
        if client is None:
            return
        cork_writes(websocket.transport, self.flush_soon, client.drop_slow)
        self.connect(client)
        log.info("ws %s connected from %s", client.user_id, websocket.remote_address[0])
        try:
            await client.reply("WebSocket authentication successful",
                               {"user_id": client.user_id, "status": "connected"})
            async for text in websocket:
                await self.dispatch(client, text)
        except ConnectionClosed:
            pass
        finally:
            self.disconnect(client)
            log.info("ws %s disconnected (%s)", client.user_id, websocket.close_code)

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
            token = frame_fields(frame).get("token")
            if not isinstance(token, str):
                raise ApiError(401, "Authentication failed", "Invalid or expired token")
            try:
                session = await self.read(self.accounts.session_for_token, token)
            except InvalidToken:
                raise ApiError(401, "Authentication failed", "Invalid or expired token") from None
        except ApiError as exc:
            await websocket.send(encode(exc.message, error=exc.error))
            await websocket.close(POLICY_VIOLATION, exc.error)
            return None
        return Client(websocket, session, self.accounts.expires_at(session),
                      TokenBucket(self.rate, self.clock))

    def connect(self, client):
        older = self.clients.get(client.user_id)
        if older is not None:
            self.leave_current_room(older)
            self.close_soon(older, REPLACED, "logged in from another location")
        with self._clients_lock:
            self.clients[client.user_id] = client

    def close_soon(self, client, code, reason):
        """Start closing a client's connection without waiting for its peer's answer."""
        task = asyncio.create_task(client.websocket.close(code, reason))
        self._closing.add(task)  # kept alive until done
        task.add_done_callback(self._closing.discard)

    # -- sessions that end -------------------------------------------------

    def end_sessions(self, session_ids, reason="session ended"):
        """Close (4001) the connections of these sessions: they ended, or grew too old."""
        ended = set(session_ids)
        if not ended:
            return
        for client in list(self.clients.values()):
            if client.session_id in ended:
                self.close_soon(client, SESSION_OVER, reason)

    async def watch_sessions(self):
        """Every SESSION_CHECK seconds, close the connections whose session is over.

        A session may end in another process (a command-line tool on the
        same database): the store says which ended lately. One that passes
        its maximum age ends by the clock. Sessions this process ends are
        closed at once by end_sessions, without waiting for this.
        """
        checked = now()
        while True:
            await asyncio.sleep(SESSION_CHECK)
            since, checked = checked - 1, now()  # a second of overlap: ended_at is in seconds
            try:
                self.end_sessions(await self.read(self.accounts.sessions_ended_since, since))
            except StoreError as exc:
                log.warning("could not look for ended sessions: %s", exc)
            self.end_sessions([client.session_id for client in self.clients.values()
                               if client.expires_at <= checked], "session expired")

    def disconnect(self, client):
        # Offline first: whoever hears user_left and then asks over HTTP
        # must already see the user offline.
        with self._clients_lock:
            if self.clients.get(client.user_id) is client:  # not replaced meanwhile
                del self.clients[client.user_id]
        self.leave_current_room(client)

    async def dispatch(self, client, text):
        """Run one frame's action; any failure becomes an error frame, never a close."""
        try:
            if not client.bucket.take():  # a flood: not even parsed
                raise bad_request("Rate limit exceeded")
            frame = protocol.parse_json_object(text)
            frame_type = frame.get("type")
            action = self.actions.get(frame_type) if isinstance(frame_type, str) else None
            if action is None:
                raise bad_request(f"Unknown message type: {frame_type}")
            if action != self.send_message and client.saving is not None \
                    and not client.saving.done():
                await asyncio.wait((client.saving,))  # answers keep the order of the frames
            await action(client, frame_fields(frame))
        except ApiError as exc:
            await client.reply(exc.message, error=exc.error)
        except tuple(WS_ERRORS) as exc:
            await client.reply("Request failed", error=WS_ERRORS[type(exc)])
        except ConnectionClosed:
            raise
        except Exception:
            log.exception("ws action failed for %s", client.user_id)
            await client.reply("Request failed", error="Internal server error")

    # -- rooms -------------------------------------------------------------

    def leave_current_room(self, client):
        """Take client out of its room and tell the rest; return the room id or None."""
        room_id = client.room_id
        if room_id is None:
            return None
        client.room_id = None
        remaining = self.rooms.get(room_id, set())
        remaining.discard(client)
        if not remaining:
            self.rooms.pop(room_id, None)
        broadcast_to(remaining, "User left room", client.event("user_left", room_id))
        return room_id

    def close_room(self, room_id):
        """A room was deleted: put its clients in no room and tell everyone."""
        for client in self.rooms.pop(room_id, set()):
            client.room_id = None
        self.tell_everyone("Room deleted", {"type": "room_deleted", "room_id": room_id})

    def tell_everyone(self, message, data):
        """One frame for every authenticated connection (the room list changed)."""
        broadcast_to(list(self.clients.values()), message, data)

    def presence(self, room_id):
        """(users online, users whose connection is in room_id). Safe from any thread."""
        with self._clients_lock:
            online = set(self.clients)
            here = {user_id for user_id, client in self.clients.items() if client.room_id == room_id}
        return online, here

    # -- actions: one per frame type ---------------------------------------

    async def join_room(self, client, fields):
        room_id = protocol.text_field(fields, "room_id")
        if client.room_id == room_id:
            raise bad_request("You are already in this room")
        since = protocol.message_id(fields, "since")
        # A member joins with a read alone, so joining stays quick while
        # another process holds the database's write lock.
        if not await self.read(self.store.is_member, room_id, client.user_id):
            if await self.write(self.store.add_member, room_id, client.user_id, iso(now())) is None:
                raise bad_request("Room not found")
        self.leave_current_room(client)
        members = self.rooms.setdefault(room_id, set())
        broadcast_to(members, "User joined room", client.event("user_joined", room_id))
        members.add(client)
        client.room_id = room_id
        joined = {"type": "room_joined", "room_id": room_id, "user_id": client.user_id}
        if since is None:
            await client.reply("Room joined successfully", joined)
        else:
            await self.replay(client, room_id, since, joined)

    async def replay(self, client, room_id, since, joined):
        """room_joined, then the messages after `since`, then live ones: no gap, no duplicate.

        The client is in the room already, but live frames for it are held
        while history is read: a message committed before the read is in
        the history (and, if broadcast meanwhile, dropped from the held
        frames by its id); one committed after it is among the held frames.
        """
        client.held = []
        try:
            # Read on the writer thread, in line with the writes: every
            # message committed before this read has been broadcast (into
            # client.held) by the time the read's answer reaches the loop. A
            # read on another thread could answer first, and a message it
            # replays would then also arrive live.
            missed = await self.queue_write(self.store.messages_after, room_id, since,
                                            REPLAY_LIMIT + 1)
        except StoreError as exc:
            log.error("could not replay %s since %s: %s", room_id, since, exc)
            missed = None
        recovered = missed is not None and len(missed) <= REPLAY_LIMIT
        missed = (missed or [])[-REPLAY_LIMIT:]
        frames = [encode("Room joined successfully", {**joined, "recovered": recovered})]
        frames += [encode("Message sent successfully",
                          {**message_data("message_received", row), "replayed": True})
                   for row in missed]
        last_replayed = missed[-1]["id"] if missed else since
        frames += [text for data, text in client.held
                   if data.get("type") != "message_received" or (data["id"] or 0) > last_replayed
                   or data["id"] is None]
        client.held = None
        # Queued in one go, with no await between: nothing can slip in between.
        for text in frames:
            broadcast([client.websocket], text)

    async def leave_room(self, client, fields):
        room_id = self.leave_current_room(client)
        if room_id is None:
            raise bad_request("You are not in any room")
        await client.reply("Room left successfully",
                           {"type": "room_left", "room_id": room_id, "user_id": client.user_id})

    async def send_message(self, client, fields):
        room_id = client.room_id
        if room_id is None:
            raise bad_request("You are not in any room")
        text = protocol.content(fields)
        client_id = protocol.client_id(fields)
        message = {"id": None, "user_id": client.user_id, "username": client.username,
                   "room_id": room_id, "content": text, "timestamp": now()}
        # Pipelined: the write takes its place in the writer's line now, and
        # the connection's next frames are read while it is saved. Why: one
        # sender's messages no longer wait for each other's commits, and
        # several saved in one turn of the loop leave together (cork_writes).
        # message_saved answers once it is committed, called back in commit
        # order, so acks and broadcasts keep that order.
        client.saving = self.save_message(
            room_id, client.user_id, text, message["timestamp"], client_id,
            then=functools.partial(self.message_saved, client, message, client_id))

    def message_saved(self, client, message, client_id, saving):
        """Tell the sender and the room about a message the writer is done with."""
        echo = {} if client_id is None else {"client_id": client_id}
        if saving.cancelled():  # the server is stopping
            return
        try:
            stored = saving.result()
        except ClientIdReused:
            client.reply_now("Request failed", error=WS_ERRORS[ClientIdReused])
            return
        except StoreError:  # the store has logged it (once for a run of failures)
            stored = None
        except Exception:
            log.exception("saving a message failed for %s", client.user_id)
            client.reply_now("Request failed", error="Internal server error")
            return
        if stored is not None and stored["duplicate"]:  # a retry: the first one's answer again
            client.reply_now("Message sent successfully", {
                **message_data("message_sent", {**message, **stored}), **echo, "duplicate": True})
            return
        if stored is not None:
            message["id"] = stored["id"]
            self._stored(message)
        # The sender first: its connection's frames then leave first, and a
        # client waiting on its acknowledgements sends again sooner (room of
        # 10, bench_swiftchat.py: 2,850 -> 4,700 messages/s).
        if stored is not None:
            client.reply_now("Message sent successfully",
                             {**message_data("message_sent", message), **echo})
        else:
            client.reply_now("Failed to save message", error="Database operation failed")
        # Per the API document, the room hears the message even if saving failed.
        others = self.rooms.get(message["room_id"], set()) - {client}
        broadcast_to(others, "Message sent successfully",
                     {**message_data("message_received", message), **echo})

    async def typing(self, client, fields):
        if client.room_id is None:
            raise bad_request("You are not in any room")
        now = self.clock()
        if now - client.typed_at < TYPING_INTERVAL:
            return  # dropped silently: the room heard this user is typing a moment ago
        client.typed_at = now
        others = self.rooms.get(client.room_id, set()) - {client}
        broadcast_to(others, "User is typing", client.event("user_typing", client.room_id))

    async def ping(self, client, fields):
        await client.reply("Pong response", {"type": "pong", "timestamp": now()})

    async def auth_again(self, client, fields):
        """A fresh token of the connection's own session renews it in place; nothing else does."""
        token = fields.get("token")
        if isinstance(token, str):
            try:
                session = await self.read(self.accounts.session_for_token, token)
            except InvalidToken:
                session = None
            if session is not None and session.id == client.session_id:
                await client.reply("WebSocket authentication successful",
                                   {"user_id": client.user_id, "status": "connected"})
                return
        raise bad_request("Already authenticated")


class WebSocketServer:
    """The WebSocket listener and its event loop thread.

    start() returns once the port is bound (or raises the bind error);
    call(function, *args) runs function on the loop from another thread;
    stop() closes every connection with 1001 and ends the thread.
    Beyond max_connections at once (0: no cap), a handshake is answered
    with HTTP 503; out_of_files() is called when accepting fails for want
    of file descriptors (it logs, at most once in a while).
    """

    def __init__(self, hub, host, port, max_connections=10_000, out_of_files=lambda: None):
        self.hub = hub
        self.host = host
        self.port = port
        self.max_connections = max_connections
        self.out_of_files = out_of_files
        self._loop = None
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
        # Keepalive pings drop a dead peer within 40 s; a peer that does not
        # answer a close within 3 s is cut off, so shutdown stays quick.
        # compression=None: with permessage-deflate (which browsers ask for)
        # a broadcast is compressed once per recipient instead of encoded
        # once, and each connection keeps zlib state of its own; chat frames
        # are small enough that compressing them saves little.
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # "::" takes IPv4 too where the system maps it (asyncio alone would not).
        listening = socket.create_server((self.host, self.port), family=family, backlog=128,
                                         dualstack_ipv6=family == socket.AF_INET6
                                         and socket.has_dualstack_ipv6())
        asyncio.get_running_loop().set_exception_handler(self._loop_error)
        async with serve(self.hub.handle, sock=listening, max_size=MAX_FRAME,
                         process_request=self._admit, compression=None, ping_interval=20,
                         ping_timeout=20, close_timeout=3) as server:
            self._loop = asyncio.get_running_loop()
            self._server = server
            ready.set_result(listening.getsockname()[1])
            watching = asyncio.create_task(self.hub.watch_sessions())
            await server.wait_closed()
            watching.cancel()

    def _admit(self, connection, request):
        """Refuse a handshake beyond the cap (websockets' process_request hook)."""
        if self.max_connections and self.hub.connection_count >= self.max_connections:
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "Server busy\n")
        return None

    def _loop_error(self, loop, context):
        # asyncio reports each failed accept; out of file descriptors, that
        # is one traceback a second for as long as it lasts.
        error = context.get("exception")
        if isinstance(error, OSError) and error.errno in (errno.EMFILE, errno.ENFILE):
            self.out_of_files()
        else:
            loop.default_exception_handler(context)

    def call(self, function, *args, timeout=10):
        """Run function(*args) on the event loop and return its result.

        function may be a coroutine function: its coroutine is awaited there.
        This is the one bridge from other threads to the loop: the loop's
        state may only be touched from the loop itself.
        """
        async def run():
            result = function(*args)
            return await result if inspect.isawaitable(result) else result
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def stop(self):
        if self._server is not None:
            self.call(self._server.close)  # closes each connection with 1001
        if self._thread is not None:
            self._thread.join(timeout=10)
