"""SwiftChat's chat core: the live chat on the event loop, and every change of chat state.

Two parts, read in this order:

- ``ChatCore``, the live state: the authenticated connections (one
  ``Client`` each), which room each is in, presence, the one place frames
  go out (``broadcast_to``), and the store's threads as the loop uses
  them. A chat message takes one path from any source: a WebSocket
  ``send_message``, a REST ``POST /messages`` and an embedding program's
  ``post_message`` all come to ``ChatCore.post``, which queues it in a
  ``GroupCommit``; in commit order, ``ChatCore.message_committed``
  acknowledges the sender, tells the room, tells members elsewhere
  (mentions and room activity) and runs the ``on_message`` callbacks.
- The operations, one function each (``create_room``, ``join_room``,
  ``add_member``, ``edit_message``, ``report_message``...): every other
  change of chat state. Each checks who may (``visible_room``, the one
  rule of who sees a room, and the rights of the change), writes through
  the writer thread, and tells who must hear. REST routes, WebSocket
  actions and the embedding API call the same function; a thread that is
  not the loop's calls it through ``ChatCore.perform``.

The one rule for adding an operation: an ``async def name(core, user,
...)`` here that raises this module's (or the store's) named exceptions,
then one REST route and/or one WebSocket action that parse their input,
call it, and answer; the two edges map the exceptions to replies.

Threads: the loop never calls the store itself, since a store call may wait
on a database lock (another process writing, a backup). Reads run on worker
threads (``read``); writes run one at a time on the writer thread
(``write``, ``queue_write``), in the order the loop queued them. Other
threads (HTTP requests, embedding programs) reach the loop only through
``call`` (``perform``), the one bridge; they may read who is online
(``online_users``, ``presence``) under ``_lock``, which guards every change
of who is connected and where. Callbacks run on a thread of their own.

This module knows nothing of HTTP and little of WebSocket framing: it hands
frames (envelopes from protocol.encode) to ``websockets.broadcast`` and
closes connections with the codes the contract names. Failures are named
exceptions; what a client asked wrongly is for the edges to say.
"""

import asyncio
import concurrent.futures
import inspect
import logging
import queue
import threading
import time

from websockets.asyncio.server import broadcast

from protocol import encode, iso, mentioned_names, now, shown_report, shown_user
from store import (AuthorDisabled, Banned, Blocked, ClientIdReused, DatabaseBusy,
                   InvalidAttachment, InvalidReply, Muted, OnlyModeratorsPost, SlowMode, StoreError)

__all__ = [
    "ChatCore", "Client", "GroupCommit", "broadcast_to", "message_data", "updated_data",
    "visible_room", "by_role", "room_audience", "members_with_presence",
    "post_message", "edit_message", "delete_message", "react", "pin_message", "update_profile",
    "mark_read", "create_room",
    "open_direct_room", "update_room", "delete_room", "join_room", "replay", "leave_room",
    "add_member", "add_member_and_tell", "remove_member", "block_user", "report_message",
    "update_report", "watch_sessions", "end_access_by_role", "index_for_search",
    "update_member", "mute_member", "room_to_export", "room_role", "POLICIES",
    "OnlyAdminsCreateRooms", "DirectMessagesOff", "MemberNotFound", "sweep_uploads",
    "sweep_uploads_once",
    "MessageNotFound", "RoomNotFound", "UserNotFound", "ReportNotFound", "NotAMember",
    "NotJoined", "NotInCharge", "NotInDirectRoom", "DirectWithOneself", "CannotChangeMessage",
    "CannotChangeReport", "CannotPin", "REPLACED", "SESSION_OVER",
]

log = logging.getLogger("swiftchat.core")

QUEUE_TIMEOUT = 1.0  # seconds a write may wait in line for the writer thread
REPLAY_LIMIT = 100  # messages replayed after join_room with `since`
TYPING_INTERVAL = 2.0  # seconds between two user_typing frames of one user
SESSION_CHECK = 1.0  # seconds between two looks for sessions ended elsewhere or grown too old
ACTIVITY_INTERVAL = 1.0  # seconds between two room_activity frames of one room
REACTIONS_DELAY = 0.1  # seconds a room's `reactions` frames wait, to leave together
SEARCH_INDEX_INTERVAL = 1.0  # seconds between two batches of new messages for the search index
UPLOAD_SWEEP_INTERVAL = 600  # seconds between two sweeps of uploads never attached
UNATTACHED_SECONDS = 24 * 3600  # an upload not attached within this long is deleted (1.3)
REPLACED = 4000  # close code: the user logged in again on a newer connection
SESSION_OVER = 4001  # close code: the session ended (logout, new password) or passed its age
# What a message the room's rules (or its attachments) refuse tells a
# WebSocket sender (1.3); the room hears nothing of it.
REFUSED_MESSAGES = {Muted: "You are muted in this room",
                    OnlyModeratorsPost: "Only moderators can post in this room",
                    SlowMode: "Slow mode is on",
                    InvalidAttachment: "Invalid attachment",
                    InvalidReply: "Invalid reply"}
# The server's policies (1.3), each option's choices, the default first.
POLICIES = {"room_creation": ("everyone", "admins"), "direct_messages": ("on", "off")}


# -- what an operation may refuse --------------------------------------------------

class MessageNotFound(Exception):
    """No message has that id (or none the user may see)."""


class RoomNotFound(Exception):
    """No room has that id, or none the user may see: to them, a private room does not exist."""


class UserNotFound(Exception):
    """No user has that id."""


class ReportNotFound(Exception):
    """No report has that id."""


class NotAMember(Exception):
    """The user may see the room but is not one of its members (who alone may post or mark it read)."""


class NotJoined(Exception):
    """The user would leave a room they are not a member of."""


class NotInCharge(Exception):
    """Only those in charge of a room may do this to it; `verb` says what, `who` who may
    ("the room creator", or "moderators" where they may too; admins always may)."""

    def __init__(self, verb, who="the room creator"):
        super().__init__(verb, who)
        self.verb = verb
        self.who = who


class CannotPin(Exception):
    """Only a room's moderators, owner and admins pin its messages (in a direct room, either member)."""


class NotInDirectRoom(Exception):
    """A direct room's two members are fixed: it cannot be changed, left or deleted."""


class DirectWithOneself(Exception):
    """A direct room needs another user."""


class CannotChangeMessage(Exception):
    """The message is not the user's to edit (or delete)."""


class MemberNotFound(Exception):
    """No member of the room with this user id."""


class OnlyAdminsCreateRooms(Exception):
    """The server's room-creation policy is 'admins' (--room-creation)."""


class DirectMessagesOff(Exception):
    """The server's direct-message policy is 'off' (--direct-messages), and neither user is an admin."""


class CannotChangeReport(Exception):
    """The user is neither an admin nor a moderator of the reported message's room."""


# -- who may see and change what (plain functions of the store, for any thread) ----

def visible_room(store, room_id, user_id):
    """The room as user_id may see it (store.room_seen_by's fields); raises RoomNotFound.

    The one check every path that names a room goes through (REST routes,
    WebSocket frames, messages by id): a public room is seen by everyone;
    a private one by its members, its creator (unless banned from it), and
    admins (but a direct room by its two members only).
    """
    room = store.room_seen_by(room_id, user_id)
    if room is None or not (room["visibility"] == "public" or room["is_member"]
                            or (room["creator_id"] == user_id and not room["is_banned"])
                            or (room["viewer_is_admin"] and room["kind"] == "room")):
        raise RoomNotFound(room_id)
    return room


def by_role(room, user_id):
    """Whether user_id sees this room (from visible_room) only by being an admin.

    Such an admin reads and moderates the room, but is never stored as one
    of its members, and loses it with the role (end_access_by_role).
    """
    return (room["visibility"] == "private" and not room["is_member"]
            and room["creator_id"] != user_id)


def room_role(room, user_id):
    """user_id's role in a room seen by them (visible_room): 'owner', 'moderator', 'member' or None.

    The owner is the room's creator (unless banned from it); a moderator
    is a member an owner or admin made one (1.3).
    """
    if room["creator_id"] == user_id and not room["is_banned"]:
        return "owner"
    return room["member_role"]


def room_in_charge(store, room_id, user_id, verb, moderators_may=False):
    """The room, if user_id is in charge of it: its owner, an admin, and (moderators_may) one of
    its moderators; else NotInCharge(verb) naming who may.

    A creator banned from their own room (by an admin) is in charge of it
    no more: not even of adding themselves back (store.Banned).
    """
    room = visible_room(store, room_id, user_id)
    if room["kind"] == "direct":
        raise NotInDirectRoom(room_id)
    if room["viewer_is_admin"]:
        return room
    if room["creator_id"] == user_id and room["is_banned"]:
        raise Banned(room_id)
    role = room_role(room, user_id)
    if role != "owner" and not (moderators_may and role == "moderator"):
        raise NotInCharge(verb, "moderators" if moderators_may else "the room creator")
    return room


def outranks(store, room, user_id, member_id):
    """Whether user_id (in charge of room, by room_in_charge) may act on member_id there.

    An admin may act on anyone; the owner on anyone but an admin; a
    moderator only on plain members (not the owner, another moderator, or an admin). The
    owner is the room's creator even while out of it: a moderator cannot ban them out.
    """
    if room["viewer_is_admin"]:
        return True
    if member_id == room["creator_id"]:
        return False
    member = store.user(member_id)
    if member is not None and member["role"] == "admin":
        return False
    if room_role(room, user_id) == "owner":
        return True
    listed = store.room_members(room["id"], member_id)
    return not listed or listed[0]["role"] == "member"


def visible_message(store, message_id, user_id):
    """A message in a room user_id may see, with what the user may do there; raises MessageNotFound."""
    message = store.message(message_id)
    try:
        room = visible_room(store, message["room_id"], user_id) if message else None
    except RoomNotFound:
        room = None
    if room is None:
        raise MessageNotFound(message_id)
    return {**message, "viewer_is_admin": room["viewer_is_admin"], "room_kind": room["kind"],
            "viewer_is_banned": room["is_banned"], "viewer_role": room_role(room, user_id),
            "viewer_is_member": room["is_member"]}


def room_audience(store, room):
    """Who hears of changes to a room in the room list: everyone (None) for a public room."""
    if room["visibility"] == "public":
        return None
    admins = store.admin_ids() if room["kind"] == "room" else []
    return {*store.member_ids(room["id"]), room["creator_id"], *admins}


def room_as_listed(store, room):
    """The room as GET /rooms lists it (with its member count)."""
    fields = ("id", "name", "description", "creator_id", "created_at", "visibility", "kind",
              "posting", "slow_mode")
    return {**{field: room[field] for field in fields},
            "member_count": len(store.member_ids(room["id"]))}


# -- one connection, and frames to many ------------------------------------------------

class Client:
    """One authenticated connection: its socket, its user and session, and the room it is in."""

    # Why slots: one Client lives as long as its connection, thousands at
    # once; without a __dict__ each is several hundred bytes smaller.
    __slots__ = ("websocket", "user", "user_id", "username", "session_id", "expires_at",
                 "room_id", "held", "by_role", "typed_at", "saving", "session_over")

    def __init__(self, websocket, session, expires_at):
        self.websocket = websocket
        self.user = session.user  # as it was when the connection authenticated
        self.user_id = session.user["id"]
        self.username = session.user["username"]
        self.session_id = session.id
        self.expires_at = expires_at  # Unix seconds: when the session passes its maximum age
        self.room_id = None  # changed under ChatCore._lock: HTTP threads read it
        self.held = None  # while a replay is read: [(data, text)] of live frames held back
        self.by_role = False  # whether it is in its room by its user's admin role alone (by_role)
        self.typed_at = float("-inf")  # when the room was last told this user is typing
        self.saving = None  # the Future of this connection's last message, until it is answered
        self.session_over = False  # set when its session ends: frames still arriving are dropped

    async def reply(self, message, data=None, error=None):
        await self.websocket.send(encode(message, data, error))

    def reply_now(self, message, data=None, error=None):
        """Queue a frame for this client alone without waiting (callbacks cannot await)."""
        self.send_now(encode(message, data, error))

    def send_now(self, text):
        # websockets.broadcast, for one: it queues the frame and returns,
        # where `await websocket.send` could wait for the client to read.
        broadcast([self.websocket], text)

    def event(self, event_type, room_id):
        """The data of a frame that tells a room about this user."""
        return {"type": event_type, "user_id": self.user_id,
                "username": self.username, "room_id": room_id}


def broadcast_to(clients, message, data):
    """Send one frame to many clients: encoded once, queued without waiting.

    websockets.broadcast queues however much a client leaves unread; the
    connection closes a client that falls too far behind (swiftchat_ws).
    """
    text = encode(message, data)
    sockets = [client.websocket for client in clients if client.held is None]
    if len(sockets) < len(clients):  # rare: a client whose history is being replayed
        for client in clients:
            if client.held is not None:  # this frame waits its turn behind the replay
                client.held.append((data, text))
    broadcast(sockets, text)


def message_data(frame_type, message):
    """The data of a message_sent or message_received frame (id None if it was not saved)."""
    return {"type": frame_type, "id": message["id"], "user_id": message["user_id"],
            "username": message["username"], "room_id": message["room_id"],
            "content": message["content"], "timestamp": message["timestamp"],
            "mentions": message["mentions"], "attachments": message["attachments"],
            "reply_to": message["reply_to"], "reactions": message["reactions"],
            "pinned": message["pinned"]}


def updated_data(message):
    """The data of a message_updated frame."""
    return {"type": "message_updated", "id": message["id"], "room_id": message["room_id"],
            "content": message["content"], "edited_at": message["edited_at"],
            "mentions": message["mentions"]}


class GroupCommit:
    """Chat messages saved in batches, one transaction each, told in commit order.

    Why: the commit is most of the cost of saving a message, and messages
    that arrive together can share one (server CPU per delivery, room of
    500: 0.82x -> 0.60x the baseline). While one batch is being committed
    the messages that arrive wait, and the next batch takes them all. An
    idle writer is given the first batch one loop turn later, so that every
    frame read in this turn joins it (without that, a window of ten in
    flight went as batches of one and nine). To switch it off, commit each
    message alone: call save_batch with a list of one in add.

    save_batch(messages) runs on the writer (it returns a Future of what
    Store.add_messages returns). add(message, then) queues one message;
    then(result) is called on the loop once its batch is done, with the
    message's row as stored, the exception it met, or None when the server
    is stopping: in the same turn as the batch's answer arrives and before
    any coroutine that was waiting resumes. Why not a Future's done
    callback: that runs a turn later, and a `since` replay read in between
    would see a message that reaches the room (and the replaying client,
    live) only after it.
    """

    def __init__(self, save_batch):
        self.save_batch = save_batch
        self._waiting = []  # [(message, then)] for the next batch
        self._committing = False  # whether a batch is with the writer now

    def add(self, message, then):
        self._waiting.append((message, then))
        if not self._committing:
            self._committing = True
            asyncio.get_running_loop().call_soon(self._commit)

    def _commit(self):
        batch, self._waiting = self._waiting, []
        self._committing = True
        committing = self.save_batch([message for message, _ in batch])
        committing.add_done_callback(lambda done: self._committed(batch, done))

    def _committed(self, batch, committing):
        self._committing = False
        if self._waiting:  # the writer starts on the next batch while this one is told
            self._commit()
        if committing.cancelled():  # the server is stopping
            results = [None] * len(batch)
        elif committing.exception() is not None:
            results = [committing.exception()] * len(batch)
        else:
            results = committing.result()
        for (_, then), result in zip(batch, results):
            try:
                then(result)
            except Exception:  # one message's failure must not leave the rest of its batch untold
                log.exception("telling about a saved message failed")


class WriterThread:
    """The one thread that writes to the store, doing writes in the order they are queued.

    Why not ThreadPoolExecutor(1) and loop.run_in_executor: each write then
    costs the loop an executor work item and a concurrent Future chained to
    the loop's Future (``submit`` alone was 9% of the loop's time in a room
    of 10). Here the loop puts one tuple on a SimpleQueue, and the thread
    answers with one call_soon_threadsafe.
    """

    def __init__(self):
        self._queue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="swiftchat-writer", daemon=True)
        self._thread.start()

    def submit(self, loop, function):
        """Queue function() and return a Future, on loop, of its result or error."""
        future = loop.create_future()
        self._queue.put((loop, future, function))
        return future

    def shutdown(self):
        """Do what is queued, then end the thread."""
        self._queue.put(None)
        self._thread.join()

    def _run(self):
        while (work := self._queue.get()) is not None:
            loop, future, function = work
            try:
                result, error = function(), None
            except Exception as exc:
                result, error = None, exc
            try:
                loop.call_soon_threadsafe(settle, future, result, error)
            except RuntimeError:  # the loop has closed: nobody is waiting any more
                pass


def settle(future, result=None, error=None):
    """Give a Future its result (or error), unless its waiter gave up on it already."""
    if future.done():  # cancelled: awaited by a task cancelled as the loop stops
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


# -- the live chat ---------------------------------------------------------------------

class ChatCore:
    """The live chat on the event loop: connections, rooms, presence, and the message path.

    Also the store as the loop uses it (read, write, queue_write: the loop
    never waits on the database) and the one bridge from other threads
    (call, perform).
    """

    def __init__(self, store, accounts, sessions_per_user=5, policies=None, files=None):
        self.store = store
        self.accounts = accounts
        self.files = files  # the files.FileFolder of uploads
        self.sessions_per_user = sessions_per_user  # 0: no cap
        # {"room_creation": "everyone"|"admins", "direct_messages": "on"|"off"} (POLICIES)
        self.policies = {name: choices[0] for name, choices in POLICIES.items()}
        self.policies.update(policies or {})
        self.loop = None  # the event loop, once swiftchat_ws has started it
        # user_id -> {session_id: Client}, least recently connected first: one
        # connection per session, up to sessions_per_user sessions (devices).
        self.clients = {}
        self.rooms = {}  # room_id -> set of Clients in that room now
        self._lock = threading.Lock()  # HTTP threads read clients and their room_id
        self._writer = WriterThread()
        self._messages = GroupCommit(lambda batch: self.queue_write(self.store.add_messages, batch))
        # room_id -> the newest message id not yet told, or None: told lately, nothing new since
        self._activity = {}
        # room_id -> {message id: (the newest `reactions` data not yet told, the connection
        # answered with it)}, told when REACTIONS_DELAY is up
        self._reactions = {}
        self._background = set()  # tasks started here, kept alive until done
        self._closing = False  # set once the server has closed: no new tasks
        # on_message callbacks run here, one at a time and in message order,
        # so a slow or failing callback never touches the loop.
        self._callbacks = []
        self._callback_runner = concurrent.futures.ThreadPoolExecutor(1, "swiftchat-callbacks")

    # -- from other threads: the one bridge ------------------------------------------

    def call(self, function, *args, timeout=10):
        """Run function(*args) on the event loop and return its result (from another thread).

        function may be a coroutine function: its coroutine is awaited there.
        This is the one bridge from other threads to the loop: the loop's
        state may only be changed on the loop itself.
        """
        async def run():
            result = function(*args)
            return await result if inspect.isawaitable(result) else result
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def perform(self, operation, *args):
        """Run one of this module's operations, operation(core, *args), from another thread."""
        return self.call(operation, self, *args)

    def online_users(self, user_ids):
        """Those of user_ids with an authenticated connection. Safe from any thread."""
        with self._lock:
            return {user_id for user_id in user_ids if user_id in self.clients}

    def presence(self, room_id):
        """(users online, users whose connection is in room_id). Safe from any thread."""
        with self._lock:
            online = set(self.clients)
            here = {client.user_id for sessions in self.clients.values()
                    for client in sessions.values() if client.room_id == room_id}
        return online, here

    def on_message(self, callback):
        """Call callback(message) after each stored message, on a thread of its own."""
        self._callbacks.append(callback)

    def close(self):
        """Let the writer and callback threads finish what they were given, then end them."""
        self._writer.shutdown()
        self._callback_runner.shutdown(wait=True)

    def stop_background(self):
        """Once the server has closed: cancel the tasks still running, start no more.

        A timer armed before the close (the next room_activity) may still
        fire while asyncio.run winds the loop down; its read would then find
        the reader threads already shut down.
        """
        self._closing = True
        for task in list(self._background):
            task.cancel()

    # -- the store, without the loop ever waiting on it ----------------------------

    async def read(self, function, *args):
        """Run a store read (or a token check) on a worker thread."""
        return await asyncio.to_thread(function, *args)

    def queue_write(self, function, *args):
        """Queue a store write (or a read that must fall in line) on the writer thread.

        Returns an asyncio Future; writes are done, and their futures
        resolved, in the order they were queued. A write that waited in line
        for QUEUE_TIMEOUT fails at once (DatabaseBusy), and the store gives
        it at most WRITE_TIMEOUT more: a write fails within two seconds.
        """
        queued = time.monotonic()

        def in_time():
            if time.monotonic() - queued > QUEUE_TIMEOUT:
                raise DatabaseBusy("waited too long for the writer thread")
            return function(*args)

        return self._writer.submit(asyncio.get_running_loop(), in_time)

    async def write(self, function, *args):
        """Run a store write on the writer thread, after the writes asked for before it."""
        return await self.queue_write(function, *args)

    def in_background(self, coroutine):
        """Run a coroutine as a task of its own, kept alive until it is done."""
        if self._closing:
            coroutine.close()  # never started, so never "never awaited"
            return
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- a chat message, from any source -------------------------------------------

    def post(self, author, room_id, content, client_id=None, sender=None, attachments=(),
             reply_to=None):
        """Save a message and tell the room; return a Future of the message as stored.

        author: {"id", "username"}. sender: the Client it came from, which
        is acknowledged (message_sent) and left out of the broadcast; a
        message from REST or an embedding program has none, and then every
        connection in the room hears it, the author's own included. The
        Future's result is the message as POST /messages answers it, or
        the store's error (ClientIdReused, DatabaseBusy, ...); a sender is
        told instead, and its Future's result is None. Whoever calls this
        has checked that the author may post there (post_message does).
        attachments: ids of the author's uploads; reply_to: the id of the
        message this one answers (the store checks both).
        """
        message = {"id": None, "user_id": author["id"], "username": author["username"],
                   "room_id": room_id, "content": content, "timestamp": now(), "mentions": [],
                   "attachments": [], "reply_to": None, "reactions": [], "pinned": False}
        posted = asyncio.get_running_loop().create_future()
        row = (room_id, author["id"], content, message["timestamp"], client_id,
               mentioned_names(content), tuple(attachments), reply_to)
        self._messages.add(row, lambda stored: self.message_committed(
            message, client_id, sender, stored, posted))
        return posted

    def message_committed(self, message, client_id, sender, stored, posted):
        """Tell the sender, the room, members elsewhere and the callbacks about a saved message.

        Called by the group commit in commit order, with the row as stored,
        the error the message met, or None when the server is stopping.
        """
        if stored is None:
            posted.cancel()
            return
        echo = {} if client_id is None else {"client_id": client_id}
        if isinstance(stored, Exception):
            if sender is None:
                settle(posted, error=stored)
            else:
                self.refuse_message(message, sender, stored, echo)
                settle(posted)
            return
        message.update({field: stored[field] for field in (
            "id", "timestamp", "mentions", "attachments", "reply_to", "reactions", "pinned")})
        if stored["duplicate"]:  # a retry: the first one's answer again, and nothing else
            echo["duplicate"] = True
        # The sender first: its frames then leave first, and a client waiting
        # on its acknowledgements sends again sooner (room of 10: 2,850 ->
        # 4,700 messages/s).
        if sender is not None:
            sender.reply_now("Message sent successfully",
                             {**message_data("message_sent", message), **echo})
        if not stored["duplicate"]:
            self.tell_room(message["room_id"], "Message sent successfully",
                           {**message_data("message_received", message), **echo}, sender)
            self.tell_elsewhere(message, stored["mentioned_members"])
            for callback in self._callbacks:
                self._callback_runner.submit(run_callback, callback, dict(message))
        settle(posted, {**message, **echo})

    def refuse_message(self, message, sender, error, echo):
        """A WebSocket sender's message could not be saved: say so, and tell the room as the seed says."""
        if isinstance(error, ClientIdReused):
            sender.reply_now("Request failed", error="client_id already used for another message")
        elif isinstance(error, AuthorDisabled):  # never broadcast
            sender.reply_now("Request failed", error="Account disabled")  # as WebSocket errors are
        elif isinstance(error, Blocked):  # never broadcast either
            sender.reply_now("Request failed", error="You cannot do this to this user")
        elif type(error) in REFUSED_MESSAGES:  # the room's rules, an attachment (1.3)
            sender.reply_now("Request failed", error=REFUSED_MESSAGES[type(error)])
        elif isinstance(error, StoreError):  # the store has logged it (once for a run of failures)
            sender.reply_now("Failed to save message", error="Database operation failed")
            # Per the API document, the room hears the message even if saving failed.
            self.tell_room(message["room_id"], "Message sent successfully",
                           {**message_data("message_received", message), **echo}, sender)
        else:
            log.error("saving a message failed for %s", sender.user_id, exc_info=error)
            sender.reply_now("Request failed", error="Internal server error")

    # -- who is connected --------------------------------------------------------------

    def connect(self, client):
        """Add client to its user's connections, closing one it replaces (4000).

        A new connection of a session replaces that session's older one
        (the seed's reconnect rule); a session beyond sessions_per_user
        replaces the least recently connected session's.
        """
        sessions = self.clients.get(client.user_id, {})
        older = sessions.get(client.session_id)
        if older is None and self.sessions_per_user and len(sessions) >= self.sessions_per_user:
            older = next(iter(sessions.values()))
        if older is not None:
            self.forget(older)
            self.leave(older)
            self.close_soon(older, REPLACED, "logged in from another location")
        with self._lock:
            self.clients.setdefault(client.user_id, {})[client.session_id] = client

    def disconnect(self, client):
        # Offline first: whoever hears user_left and then asks over HTTP
        # must already see the user offline.
        self.forget(client)
        self.leave(client)

    def forget(self, client):
        """Take client out of who is connected (unless a newer one replaced it already)."""
        with self._lock:
            sessions = self.clients.get(client.user_id, {})
            if sessions.get(client.session_id) is client:
                del sessions[client.session_id]
                if not sessions:
                    del self.clients[client.user_id]

    def all_clients(self):
        return [client for sessions in self.clients.values() for client in sessions.values()]

    def close_soon(self, client, code, reason):
        """Start closing a client's connection without waiting for its peer's answer."""
        self.in_background(client.websocket.close(code, reason))

    def end_sessions(self, session_ids, reason="session ended"):
        """Close (4001) the connections of these sessions: they ended, or grew too old."""
        ended = set(session_ids)
        for client in self.all_clients():
            if client.session_id in ended and not client.session_over:
                # At once, not when the close is done: a frame read meanwhile
                # must not be acted on for a session that has ended.
                client.session_over = True
                self.close_soon(client, SESSION_OVER, reason)

    # -- where each connection is ------------------------------------------------------

    def join(self, client, room_id, by_admin_role=False):
        """Put client in room_id (out of the room it was in) and tell both rooms.

        by_admin_role: the client may be there only while its user is an admin (by_role).
        """
        self.leave(client)
        client.by_role = by_admin_role
        members = self.rooms.setdefault(room_id, set())
        if not any(other.user_id == client.user_id for other in members):  # the user's first here
            broadcast_to(members, "User joined room", client.event("user_joined", room_id))
        members.add(client)
        with self._lock:
            client.room_id = room_id

    def leave(self, client):
        """Take client out of its room and tell the rest; return the room id or None."""
        room_id = client.room_id
        if room_id is None:
            return None
        with self._lock:
            client.room_id = None
        client.by_role = False
        remaining = self.rooms.get(room_id, set())
        remaining.discard(client)
        if not remaining:
            self.rooms.pop(room_id, None)
        if not any(other.user_id == client.user_id for other in remaining):  # the user's last here
            broadcast_to(remaining, "User left room", client.event("user_left", room_id))
        return room_id

    def empty(self, room_id):
        """Put every connection in room_id (which is gone) in no room, telling no one."""
        for client in self.rooms.pop(room_id, set()):
            with self._lock:
                client.room_id = None
            client.by_role = False

    def connections_in(self, room_id, user_id):
        return [client for client in self.rooms.get(room_id, ()) if client.user_id == user_id]

    def take_out(self, room_id, user_id, message, data):
        """Take user_id's connections out of room_id, and tell each of them why."""
        for client in self.connections_in(room_id, user_id):
            self.leave(client)
            client.reply_now(message, data)

    def typing(self, client, clock):
        """Tell client's room that its user is typing, at most once per TYPING_INTERVAL."""
        if clock - client.typed_at < TYPING_INTERVAL:
            return  # dropped silently: the room heard this user is typing a moment ago
        client.typed_at = clock
        others = [other for other in self.rooms.get(client.room_id, set())
                  if other.user_id != client.user_id]
        broadcast_to(others, "User is typing", client.event("user_typing", client.room_id))

    # -- telling ----------------------------------------------------------------------

    def tell_reactions(self, data, sender=None):
        """A message's reactions changed: its room hears `reactions` REACTIONS_DELAY later,
        with the newest list of each message whose reactions changed meanwhile.

        Why: a reaction comes alone, where messages come in batches, and
        each frame went out in a send of its own to every connection of the
        room (room of 100, a reaction per message: 39,300 -> 13,000 sendto
        calls; server CPU per delivery 0.77x of sending each at once, median
        of 6 interleaved rounds; 0.72x the bare relay's). Waiting a
        moment lets a room's reactions leave together. And each frame lists
        all of a message's reactions: clients toggling one emoji as fast as
        their rate limits allow send the room one frame per message per
        REACTIONS_DELAY, not hundreds a second each made stale by the next.
        sender, answered with this list already, is not sent it again.
        """
        waiting = self._reactions.get(data["room_id"])
        if waiting is None:
            waiting = self._reactions[data["room_id"]] = {}
            self.loop.call_later(REACTIONS_DELAY, self._tell_reactions_now, data["room_id"])
        waiting[data["id"]] = (data, sender)

    def _tell_reactions_now(self, room_id):
        for data, sender in self._reactions.pop(room_id, {}).values():
            self.tell_room(room_id, "Reactions updated", data, sender)

    def tell_room(self, room_id, message, data, sender=None):
        """One frame for every connection in a room but the sender's (which was answered)."""
        broadcast_to(self.rooms.get(room_id, set()) - {sender}, message, data)

    def tell_everyone(self, message, data, audience=None):
        """One frame for every authenticated connection, or those of the users in audience."""
        broadcast_to([client for client in self.all_clients()
                      if audience is None or client.user_id in audience], message, data)

    def tell_elsewhere(self, message, mentioned_members):
        """A message was saved in its room: tell its members who are not there.

        A mentioned member's connections elsewhere hear `mention` at once.
        Every member elsewhere hears `room_activity`, at most once per
        ACTIVITY_INTERVAL per room while messages arrive (the first at once,
        then the newest id when the interval is up): a busy room costs one
        read of its members a second, not one per message.
        """
        room_id = message["room_id"]
        mentioned = [client for user_id in mentioned_members
                     for client in self.clients.get(user_id, {}).values()
                     if client.room_id != room_id]
        if mentioned:
            data = message_data("message_received", message)
            del data["type"]
            broadcast_to(mentioned, "You were mentioned", {"type": "mention", "message": data})
        if room_id in self._activity:  # told less than ACTIVITY_INTERVAL ago: told when it is up
            self._activity[room_id] = message["id"]
        else:
            self._tell_activity(room_id, message["id"])

    def _tell_activity(self, room_id, message_id):
        self._activity[room_id] = None
        self.loop.call_later(ACTIVITY_INTERVAL, self._activity_interval_over, room_id)
        self.in_background(self._send_activity(room_id, message_id))

    def _activity_interval_over(self, room_id):
        newest = self._activity.pop(room_id, None)
        if newest is not None:
            self._tell_activity(room_id, newest)

    async def _send_activity(self, room_id, message_id):
        try:
            members = await self.read(self.store.member_ids, room_id)
        except StoreError as exc:  # told with the next message
            log.warning("could not read the members of %s: %s", room_id, exc)
            return
        broadcast_to([client for user_id in members
                      for client in self.clients.get(user_id, {}).values()
                      if client.room_id != room_id],
                     "New activity", {"type": "room_activity", "room_id": room_id,
                                      "last_message_id": message_id})


def run_callback(callback, message):
    try:
        callback(message)
    except Exception:
        log.exception("an on_message callback failed")


# -- operations: every other change of chat state ------------------------------------
# Each: check who may, write through the writer thread, tell who must hear.
# Called on the loop by the WebSocket actions, and through ChatCore.perform
# by the REST routes and the embedding API.

async def post_message(core, user, room_id, content, client_id=None, attachments=(),
                       reply_to=None):
    """Post as user in a room they are a member of (REST); returns the message as stored.

    A WebSocket connection posts with ChatCore.post straight away: being in
    the room is its check, made when it joined. An embedding program,
    trusted code, posts anywhere with ChatCore.post too.
    """
    room = await core.read(visible_room, core.store, room_id, user["id"])
    if not room["is_member"]:
        raise NotAMember(room_id)
    return await core.post(user, room_id, content, client_id, attachments=attachments,
                           reply_to=reply_to)


async def edit_message(core, user, message_id, content, sender=None):
    """Change the content of a message of user's; the room hears message_updated. Returns the row.

    Through the writer, in line with the messages being saved, so that an
    edit never reaches the room before the message it changes.
    """
    message = await core.read(visible_message, core.store, message_id, user["id"])
    if message["user_id"] != user["id"]:
        raise CannotChangeMessage(message_id)
    if message["viewer_is_banned"]:  # a ban holds: what they wrote stays as it was
        raise Banned(message["room_id"])
    if message["room_kind"] == "direct" and await core.read(
            core.store.blocked_in_direct_room, message["room_id"], user["id"]):
        raise Blocked(user["id"])  # an edit is a new text too
    edited = await core.write(core.store.edit_message, message_id, content, now(),
                              mentioned_names(content))
    if edited is None:  # deleted a moment ago
        raise MessageNotFound(message_id)
    core.tell_room(edited["room_id"], "Message updated", updated_data(edited), sender)
    return edited


async def delete_message(core, user, message_id, sender=None):
    """Delete a message: its author's, or any in a room of the user's making, or any for an admin.

    An author may delete their own messages even in a room they may no
    longer see (a private room they were banned from). The room hears
    message_deleted; returns {id, room_id}.
    """
    try:
        message = await core.read(visible_message, core.store, message_id, user["id"])
    except MessageNotFound:
        message = await core.read(core.store.message, message_id)
        if message is None or message["user_id"] != user["id"]:
            raise
        message.update(viewer_is_admin=False, room_kind=None, viewer_is_banned=True)
    in_charge = (message["room_kind"] == "room" and not message["viewer_is_banned"]
                 and message.get("viewer_role") in ("owner", "moderator"))
    if user["id"] != message["user_id"] and not in_charge and not message["viewer_is_admin"]:
        raise CannotChangeMessage(message_id)
    uploads = await core.write(core.store.delete_message, message_id)
    if uploads is None:
        raise MessageNotFound(message_id)
    await core.read(core.files.delete, uploads)
    deleted = {"id": message_id, "room_id": message["room_id"]}
    core.tell_room(message["room_id"], "Message deleted", {"type": "message_deleted", **deleted},
                   sender)
    return deleted


async def react(core, user, message_id, emoji, adding, sender=None):
    """Add (adding) or take back user's emoji on a message; the room hears `reactions`.

    For members who may post in the message's room (a muted member, or a
    member of a room where only moderators post, may not). Returns the
    frame's data: {type, id, room_id, reactions}.
    """
    # The checks and the write in one trip to the writer thread, not a reader's and then
    # the writer's: handing work to a thread is much of a reaction's cost (room of 100, a
    # reaction per message: server CPU per delivery 0.86x and 0.95x of two trips, in two
    # runs of 6 interleaved rounds; 0.67x the bare relay's).
    room_id, reactions, changed = await core.write(checked_reaction, core.store, user["id"],
                                                   message_id, emoji, adding, now())
    data = {"type": "reactions", "id": message_id, "room_id": room_id, "reactions": reactions}
    if changed:
        core.tell_reactions(data, sender)
    return data


def checked_reaction(store, user_id, message_id, emoji, adding, when):
    """react's checks and write (on the writer thread): (room_id, reactions, changed)."""
    message = visible_message(store, message_id, user_id)
    if not message["viewer_is_member"]:
        raise NotAMember(message["room_id"])
    if message["room_kind"] == "direct" and store.blocked_in_direct_room(message["room_id"],
                                                                         user_id):
        raise Blocked(user_id)
    reacted = store.react(message_id, user_id, emoji, adding, when)
    if reacted is None:  # deleted a moment ago
        raise MessageNotFound(message_id)
    return (message["room_id"], *reacted)


async def pin_message(core, user, message_id, pinning):
    """Pin (or unpin) a message: for its room's moderators, owner and admins, and in a direct
    room for either member. The room hears message_pinned or message_unpinned (the frame's
    data is returned), unless it was so already."""
    message = await core.read(visible_message, core.store, message_id, user["id"])
    if message["room_kind"] == "direct":
        in_charge = message["viewer_is_member"]
        if await core.read(core.store.blocked_in_direct_room, message["room_id"], user["id"]):
            raise Blocked(user["id"])  # the other member hears the pin: as a message, refused
    else:
        in_charge = not message["viewer_is_banned"] and (
            message["viewer_is_admin"] or message["viewer_role"] in ("owner", "moderator"))
    if not in_charge:
        raise CannotPin(message_id)
    changed = await core.write(core.store.pin, message_id, message["room_id"], user["id"], now(),
                               pinning)
    if changed is None:
        raise MessageNotFound(message_id)
    data = {"type": "message_pinned" if pinning else "message_unpinned", "id": message_id,
            "room_id": message["room_id"]}
    if changed:
        core.tell_room(message["room_id"], "Message pinned" if pinning else "Message unpinned", data)
    return data


async def update_profile(core, user, changes):
    """Set user's display name and/or status; the members of their rooms (and their own
    connections) hear user_updated. Returns the user (a store row)."""
    updated = await core.write(core.store.update_profile, user["id"], changes)
    if updated is None:
        raise UserNotFound(user["id"])
    core.accounts.forget_checked_tokens()  # GET /users/me answers with the new name at once
    mates = await core.read(core.store.room_mates, user["id"])
    core.tell_everyone("Profile updated",
                       {"type": "user_updated", "user": shown_user(updated, {"role": "user"})},
                       {*mates, user["id"]})
    return updated


async def mark_read(core, user_id, room_id, message_id, sender=None):
    """Move user_id's read marker in room_id forward to message_id; their other connections hear it.

    Returns {room_id, last_read_id, unread_count}. Raises RoomNotFound, or
    NotAMember for a room the user may see but has not joined.
    """
    await core.read(visible_room, core.store, room_id, user_id)
    marker = await core.write(core.store.mark_read, room_id, user_id, message_id)
    if marker is None:
        raise NotAMember(room_id)
    broadcast_to([client for client in core.clients.get(user_id, {}).values()
                  if client is not sender],
                 "Read marker updated", {"type": "read_marker", **marker})
    return marker


async def create_room(core, user, name, description, visibility, posting="everyone",
                      slow_mode=0):
    """A new room of user's, with them its first member; whoever may see it hears room_created.

    Raises OnlyAdminsCreateRooms under that policy, store.Conflict for a
    public room's taken name.
    """
    if core.policies["room_creation"] == "admins" and user["role"] != "admin":
        raise OnlyAdminsCreateRooms()
    room = await core.write(core.store.create_room, name, description, user["id"], iso(now()),
                            visibility, (), posting, slow_mode)
    audience = await core.read(room_audience, core.store, room)
    core.tell_everyone("Room created", {"type": "room_created", **room, "member_count": 1},
                       audience)
    return room


async def open_direct_room(core, user, other_id):
    """The direct room of user and other_id, made on first use; returns (room, whether made).

    Raises DirectWithOneself, UserNotFound, or store.Blocked when the
    other has blocked user. The two hear room_created when it is made.
    """
    if other_id == user["id"]:
        raise DirectWithOneself(other_id)
    other = await core.read(core.store.user, other_id)
    if other is None:
        raise UserNotFound(other_id)
    if core.policies["direct_messages"] == "off" and "admin" not in (user["role"], other["role"]):
        raise DirectMessagesOff()
    if await core.read(core.store.blocks, other_id, user["id"]):
        raise Blocked(other_id)
    room, created = await core.write(core.store.direct_room, user["id"], other_id,
                                     f"{user['username']} & {other['username']}", iso(now()))
    if created:
        core.tell_everyone("Room created", {"type": "room_created", **room, "member_count": 2},
                           {user["id"], other_id})
    return room, created


async def update_room(core, user, room_id, changes):
    """Change a room's description, posting or slow_mode; whoever may see it hears room_updated.

    changes: {"description"?, "posting"?, "slow_mode"?}. The description is
    its owner's (or an admin's) to change, the two settings its moderators' too.
    """
    room = await core.read(room_in_charge, core.store, room_id, user["id"], "update",
                           "description" not in changes)
    await core.write(core.store.update_room, room_id, changes)
    audience = await core.read(room_audience, core.store, room)
    core.tell_everyone("Room updated", {"type": "room_updated", "room_id": room_id, **changes},
                       audience)
    return {**room, **changes}


async def delete_room(core, user, room_id):
    """Delete a room (its creator, or an admin) with its members and messages.

    Its connections are put in no room, and whoever could see it hears room_deleted.
    """
    room = await core.read(room_in_charge, core.store, room_id, user["id"], "delete")
    audience = await core.read(room_audience, core.store, room)  # before its members go with it
    uploads = await core.write(core.store.delete_room, room_id)
    await core.read(core.files.delete, uploads)
    core.empty(room_id)
    core.tell_everyone("Room deleted", {"type": "room_deleted", "room_id": room_id}, audience)
    return room


async def join_room(core, user, room_id):
    """Make user a member of room_id (REST join and WebSocket join_room alike); return the room.

    The room is visible_room's, with joined_at the first join's time, or
    None for an admin let in by role alone (by_role), who is not stored
    as a member. A member already joins with a read alone, so joining
    stays quick while another process holds the database's write lock.
    Raises RoomNotFound, or store.Banned for a user banned from the room.
    """
    room = await core.read(visible_room, core.store, room_id, user["id"])
    if room["is_member"] or by_role(room, user["id"]):
        return room
    joined_at = await core.write(core.store.add_member, room_id, user["id"], iso(now()))
    if joined_at is None:  # deleted a moment ago
        raise RoomNotFound(room_id)
    return {**room, "joined_at": joined_at, "is_member": True}


async def replay(core, client, room_id, since, joined):
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
        missed = await core.queue_write(core.store.messages_after, room_id, since,
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
        client.send_now(text)


async def leave_room(core, user, room_id):
    """End user's membership of room_id (REST); their connections there leave it too.

    Raises NotInDirectRoom, or NotJoined when user is not a member.
    """
    room = await core.read(visible_room, core.store, room_id, user["id"])
    if room["kind"] == "direct":
        raise NotInDirectRoom(room_id)
    if not await core.write(core.store.remove_member, room_id, user["id"]):
        raise NotJoined(room_id)
    core.take_out(room_id, user["id"], "Room left successfully",
                  {"type": "room_left", "room_id": room_id, "user_id": user["id"]})
    return room


async def add_member(core, user, room_id, member_id):
    """user (the room's creator, or an admin) adds member_id to room_id; see add_member_and_tell.

    Raises UserNotFound, NotInCharge, or store.Blocked when member_id has
    blocked user (an admin keeps every admin power, blocked or not).
    """
    if member_id == user["id"]:  # adding oneself back is no way around a ban
        seen = await core.read(visible_room, core.store, room_id, user["id"])
        if seen["is_banned"] and not seen["viewer_is_admin"]:
            raise Banned(room_id)
    room = await core.read(room_in_charge, core.store, room_id, user["id"], "add members to")
    member = await core.read(core.store.user, member_id)
    if member is None:
        raise UserNotFound(member_id)
    if not room["viewer_is_admin"] and await core.read(core.store.blocks, member_id, user["id"]):
        raise Blocked(member_id)
    return await add_member_and_tell(core, room, member)


async def add_member_and_tell(core, room, member):
    """Make member a member of room (lifting a ban) and tell their connections (room_added).

    Returns the member as the member list shows it. Raises RoomNotFound
    when the room was deleted a moment ago. The embedding API, trusted
    code, calls this straight away.
    """
    joined_at = await core.write(core.store.add_member, room["id"], member["id"], iso(now()),
                                 True)
    if joined_at is None:
        raise RoomNotFound(room["id"])
    listed = await core.read(room_as_listed, core.store, room)
    core.tell_everyone("Added to room", {"type": "room_added", **listed}, {member["id"]})
    added = await core.read(members_with_presence, core, room["id"], member["id"])
    if not added:  # removed again a moment ago
        raise MemberNotFound(member["id"])
    return added[0]


async def remove_member(core, user, room_id, member_id, ban):
    """user (the room's owner, a moderator, or an admin) removes member_id from room_id, and bans
    them if asked.

    Their connections there leave it and hear room_removed; the room hears user_left.
    """
    room = await core.read(room_in_charge, core.store, room_id, user["id"], "remove members from",
                           True)
    if await core.read(core.store.user, member_id) is None:
        raise UserNotFound(member_id)
    if not await core.read(outranks, core.store, room, user["id"], member_id):
        raise NotInCharge("remove members from")
    await core.write(core.store.remove_member, room_id, member_id, now() if ban else None)
    core.take_out(room_id, member_id, "Removed from room",
                  {"type": "room_removed", "room_id": room_id})
    return room


def members_with_presence(core, room_id, member_id=None):
    """A room's members (or the one member_id) as GET /rooms/{id}/members lists them, with
    presence. From any thread."""
    members = core.store.room_members(room_id, member_id)
    online, here = core.presence(room_id)
    for member in members:
        member["is_online"] = member["id"] in online
        member["in_room"] = member["id"] in here
        muted_until = member["muted_until"]
        member["muted_until"] = iso(muted_until) if muted_until and muted_until > now() else None
    return members


async def update_member(core, user, room_id, member_id, role):
    """Make a member a moderator or a plain member again (the room's owner, or an admin).

    The room's connections hear member_updated; returns the member as listed.
    """
    room = await core.read(room_in_charge, core.store, room_id, user["id"],
                           "change roles in")
    return await change_member(core, room, member_id, {"role": role})


async def mute_member(core, user, room_id, member_id, minutes):
    """Mute member_id in room_id for `minutes` (None: unmute); for its moderators, owner, admins.

    A muted member may not post, edit or react there until then. The
    room's connections hear member_updated; returns the member as listed.
    """
    room = await core.read(room_in_charge, core.store, room_id, user["id"], "mute members of",
                           True)
    if not await core.read(outranks, core.store, room, user["id"], member_id):
        raise NotInCharge("mute members of")
    return await change_member(core, room, member_id,
                               {"muted_until": None if minutes is None else now() + 60 * minutes})


async def change_member(core, room, member_id, changes):
    """Store a change of a member (update_member, mute_member) and tell the room."""
    if not await core.write(core.store.update_member, room["id"], member_id, changes):
        raise MemberNotFound(member_id)  # not a member of it (any more)
    listed = await core.read(members_with_presence, core, room["id"], member_id)
    if not listed:
        raise MemberNotFound(member_id)
    core.tell_room(room["id"], "Member updated",
                   {"type": "member_updated", "room_id": room["id"], "member": listed[0]})
    return listed[0]


async def room_to_export(core, user, room_id):
    """The room, if user may export its history: its owner, moderators and admins."""
    return await core.read(room_in_charge, core.store, room_id, user["id"], "export", True)


async def block_user(core, user, other_id, blocking):
    """Block (or with blocking=False unblock) other_id for user; return the other user.

    Nothing live changes: what a block refuses is refused when it is asked
    for (a direct room, an addition, a message, a mention).
    """
    other = await core.read(core.store.user, other_id)
    if other is None:
        raise UserNotFound(other_id)
    if blocking:
        await core.write(core.store.block, user["id"], other_id, now())
    else:
        await core.write(core.store.unblock, user["id"], other_id)
    return other


async def report_message(core, user, message_id, reason):
    """Report a message user may read; its room's moderators and every admin hear of it.

    Returns the report (a store row). Raises MessageNotFound, or
    store.Conflict when user reported this message already.
    """
    await core.read(visible_message, core.store, message_id, user["id"])
    report = await core.write(core.store.add_report, message_id, user["id"], reason, now())
    if report is None:  # deleted a moment ago
        raise MessageNotFound(message_id)
    admins = await core.read(core.store.admin_ids)
    moderators = await core.read(core.store.report_moderators, report["id"])
    author_online = bool(core.online_users({report["author_id"]}))
    core.tell_everyone("New report", {"type": "report", "report": shown_report(
        report, author_online, {"role": "user"})}, {*admins, *moderators})
    return report


async def update_report(core, user, report_id, status):
    """Mark a report resolved or dismissed: for admins and the owner and moderators of its room.

    Not for someone reported in it, nor for one banned from the room
    (store.report_moderated_by).
    """
    report = await core.read(core.store.report, report_id, user["id"])
    if report is None:
        raise ReportNotFound(report_id)
    if user["role"] != "admin" and not report["moderated_by_viewer"]:
        raise CannotChangeReport(report_id)
    return await core.write(core.store.set_report_status, report_id, status, user["id"])


# -- on the loop, every second ------------------------------------------------------------

async def watch_sessions(core):
    """Every SESSION_CHECK seconds, close the connections whose session is over.

    A session may end in another process (a command-line tool on the
    same database): the store says which ended lately. One that passes
    its maximum age ends by the clock. Sessions this process ends are
    closed at once by end_sessions, without waiting for this. Admins
    demoted meanwhile leave the rooms they were in by role alone.
    """
    checked = now()
    while True:
        await asyncio.sleep(SESSION_CHECK)
        since, checked = checked - 1, now()  # a second of overlap: ended_at is in seconds
        try:
            core.end_sessions(await core.read(core.accounts.sessions_ended_since, since))
            await end_access_by_role(core)
        except StoreError as exc:
            log.warning("could not look for ended sessions: %s", exc)
        core.end_sessions([client.session_id for client in core.all_clients()
                           if client.expires_at <= checked], "session expired")


async def end_access_by_role(core):
    """Take the connections that are in a room by an admin role their user lost out of it.

    A demotion may come from another process (the command line): the
    admins are read again, once a check and only while such a connection
    exists. Their requests are refused at once anyway: visible_room reads
    the role afresh every time.
    """
    joined_by_role = [client for client in core.all_clients() if client.by_role]
    if not joined_by_role:
        return
    admins = set(await core.read(core.store.admin_ids))
    for client in joined_by_role:
        if client.user_id not in admins and client.by_role:  # it may have left meanwhile
            room_id = core.leave(client)
            client.reply_now("Removed from room", {"type": "room_removed", "room_id": room_id})


async def index_for_search(core):
    """Every SEARCH_INDEX_INTERVAL seconds, add the messages saved meanwhile to the search index.

    On the writer thread, in line with the messages being saved: a batch a
    second costs far less than indexing each message as it is saved
    (store.SEARCH_TABLES says how much), and a message can be found a
    second after it was sent at most.
    """
    while core.store.can_search:
        await asyncio.sleep(SEARCH_INDEX_INTERVAL)
        try:
            await core.write(core.store.index_new_messages)
        except StoreError as exc:  # tried again in a second
            log.warning("could not add new messages to the search index: %s", exc)


async def sweep_uploads(core):
    """Every UPLOAD_SWEEP_INTERVAL seconds, delete the uploads never attached within a day, and
    the files no upload owns (a crash between writing a file and recording it, or a half-written
    upload), so that nothing fills the disk unseen and quotas free up (CONTRACT 1.3)."""
    while True:
        try:
            await sweep_uploads_once(core, now())
        except (StoreError, OSError) as exc:
            log.warning("could not sweep the uploads: %s", exc)
        await asyncio.sleep(UPLOAD_SWEEP_INTERVAL)


async def sweep_uploads_once(core, when):
    """One sweep (sweep_uploads), as if it were `when` (Unix seconds); returns the ids deleted."""
    removed = await core.write(core.store.remove_unattached_uploads, when - UNATTACHED_SECONDS)
    stale = await core.read(core.files.older_than, 3600)  # an upload being written is newer
    owned = await core.read(core.store.upload_ids, stale)
    orphans = [name for name in stale if name not in owned]
    await core.read(core.files.delete, [*removed, *orphans])
    return [*removed, *orphans]
