-- SwiftChat's tables, at the newest schema version (store.SCHEMA_VERSION).
-- store.py runs this file at every start-up, after migrating an older
-- database (store.MIGRATIONS), so each statement must be safe to repeat
-- (IF NOT EXISTS). The file holds no semicolons except between statements.

CREATE TABLE IF NOT EXISTS users (
    id            TEXT PRIMARY KEY,               -- 'user_' + 8 hex digits
    username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,                  -- 'pbkdf2_sha256$iterations$salt$hash'
    created_at    TEXT NOT NULL,                  -- ISO-8601 UTC, '2025-07-20T13:30:00Z'
    role          TEXT NOT NULL DEFAULT 'user',   -- 'user' or 'admin'
    disabled      INTEGER NOT NULL DEFAULT 0,     -- 1: cannot log in, its sessions ended
    -- 1 (1.3): the password was chosen by someone else (an admin, an import):
    -- its owner must choose a new one before doing anything else.
    must_change_password INTEGER NOT NULL DEFAULT 0,
    display_name  TEXT,                           -- shown instead of the username (NULL: not set) (1.3)
    status        TEXT NOT NULL DEFAULT ''        -- a line the user says about themselves (1.3)
);
CREATE INDEX IF NOT EXISTS users_by_age ON users (created_at, id);

CREATE TABLE IF NOT EXISTS rooms (
    id          TEXT PRIMARY KEY,                 -- 'room_' + 8 hex digits
    name        TEXT NOT NULL COLLATE NOCASE,     -- unique among public rooms (below)
    description TEXT NOT NULL DEFAULT '',
    creator_id  TEXT NOT NULL REFERENCES users (id),
    created_at  TEXT NOT NULL,
    visibility  TEXT NOT NULL DEFAULT 'public',   -- 'public' or 'private'
    kind        TEXT NOT NULL DEFAULT 'room',     -- 'room' or 'direct' (two users, private)
    direct_key  TEXT UNIQUE,                      -- a direct room's two user ids, sorted: one per pair
    posting     TEXT NOT NULL DEFAULT 'everyone', -- 'everyone' or 'moderators' (1.3)
    slow_mode   INTEGER NOT NULL DEFAULT 0        -- seconds between one member's posts, 0: off (1.3)
);
-- Rooms are listed in creation order, which is the order of their rowids
-- (created_at has only one-second precision), so they need no index.
CREATE UNIQUE INDEX IF NOT EXISTS public_room_names ON rooms (name) WHERE visibility = 'public';

-- Persisted membership (REST join, WebSocket join_room, room creation).
-- Which room a live connection is in right now is not stored: it lives in
-- swiftchat_ws.py and ends with the connection.
CREATE TABLE IF NOT EXISTS room_members (
    room_id   TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users (id),
    joined_at TEXT NOT NULL,
    -- The newest message this member has read (1.2): every message of the
    -- room after it, and not by them, is unread. Only moves forward.
    last_read_id  INTEGER NOT NULL DEFAULT 0,
    read_position INTEGER NOT NULL DEFAULT 0,     -- the position (in messages) of that message
    -- 'moderator' or 'member' (1.3): the room's creator is its owner whatever this says.
    role          TEXT NOT NULL DEFAULT 'member',
    PRIMARY KEY (room_id, user_id)
);
-- A room's member list, in the order they joined, in one index scan.
CREATE INDEX IF NOT EXISTS members_by_join ON room_members (room_id, joined_at, user_id);

-- Who was removed from a room and may not join it again (1.2).
CREATE TABLE IF NOT EXISTS room_bans (
    room_id   TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users (id),
    banned_at INTEGER NOT NULL,                   -- Unix seconds
    PRIMARY KEY (room_id, user_id)
);

CREATE TABLE IF NOT EXISTS messages (
    -- AUTOINCREMENT: ids keep increasing even after the newest message is
    -- deleted with its room, so history paging by id never sees an id reused.
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id   TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users (id),
    content   TEXT NOT NULL,
    timestamp INTEGER NOT NULL,                   -- Unix seconds
    client_id TEXT,                               -- the sender's own id for it, if any
    edited_at INTEGER,                            -- Unix seconds of the last edit, or NULL
    mentions  TEXT,                               -- the mentioned users' ids, space-separated, or NULL
    position  INTEGER NOT NULL DEFAULT 0,         -- 1 for a room's first message, 2 for its next... (1.2)
    -- The message this one replies to (1.3), in the same room. Not a
    -- foreign key: a reply outlives its parent, and then says it was deleted.
    reply_to  INTEGER
);
CREATE INDEX IF NOT EXISTS messages_by_room ON messages (room_id, id);
-- A member's own messages after their read marker, counted in one range.
CREATE INDEX IF NOT EXISTS messages_by_author ON messages (room_id, user_id, id);
-- A retried send_message with the same client_id finds the first one here.
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_client_id
    ON messages (user_id, client_id) WHERE client_id IS NOT NULL;

-- The positions of a room's deleted messages (1.2). A member's unread
-- count is then arithmetic, not a count of the messages after their
-- marker: the positions after it (rooms.last_position minus their
-- read_position), less those deleted, less their own. See
-- store.UNREAD_COUNT.
CREATE TABLE IF NOT EXISTS deleted_messages (
    room_id  TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (room_id, position)
) WITHOUT ROWID;

-- Who was mentioned where (1.2): one row per mentioned user (not the
-- author) and message, so that a member's mentions after their read marker
-- are counted in one index range. Goes with its message (ON DELETE CASCADE).
CREATE TABLE IF NOT EXISTS mentions (
    user_id    TEXT NOT NULL REFERENCES users (id),
    room_id    TEXT NOT NULL,
    message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, room_id, message_id)
) WITHOUT ROWID;
-- Deleting a message (or its room's thousands) finds its mentions here.
CREATE INDEX IF NOT EXISTS mentions_by_message ON mentions (message_id);

-- Server-wide values that must survive a restart, such as the generated
-- JWT secret.
CREATE TABLE IF NOT EXISTS settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Login sessions (1.2). Every token names one (its `sid`). A session ends
-- at logout or a password change (ended_at is set), or 30 days after
-- auth_time, and a token of an ended session is refused. A server notices
-- sessions ended by another process through sessions_by_end.
CREATE TABLE IF NOT EXISTS sessions (
    id        TEXT PRIMARY KEY,                   -- random, URL-safe
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time INTEGER NOT NULL,                   -- Unix seconds: when the login happened
    ended_at  INTEGER                             -- Unix seconds, or NULL while it lasts
);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user_id) WHERE ended_at IS NULL;
CREATE INDEX IF NOT EXISTS sessions_by_end ON sessions (ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS sessions_by_age ON sessions (auth_time)
;

-- A user's mute and last post in a room (1.3), kept apart from their
-- membership: leaving and joining again, or deleting a message, clears
-- neither (store.PostingRules). last_post is written in slow-mode rooms only.
CREATE TABLE IF NOT EXISTS member_limits (
    room_id     TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users (id),
    muted_until INTEGER,                          -- Unix seconds: may not post until then
    last_post   INTEGER,                          -- Unix seconds of their last message there
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;

-- The (username, address) pairs that logged in successfully (1.3): a
-- known pair is locked only by its own failures, not by those of the
-- address or the username (accounts.LoginLimits). address is
-- protocol.limit_key's (an IPv4 address, or an IPv6 /64).
CREATE TABLE IF NOT EXISTS known_logins (
    username     TEXT NOT NULL,                   -- lower-cased
    address      TEXT NOT NULL,
    last_success INTEGER NOT NULL,                -- Unix seconds
    PRIMARY KEY (username, address)
) WITHOUT ROWID;

-- Who blocked whom (1.3). A blocked user cannot open a direct room with
-- the blocker, add them to a room, or post in their direct room, and their
-- mentions of the blocker are not counted.
CREATE TABLE IF NOT EXISTS blocks (
    blocker_id TEXT NOT NULL REFERENCES users (id),
    blocked_id TEXT NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,                  -- Unix seconds
    PRIMARY KEY (blocker_id, blocked_id)
) WITHOUT ROWID;
-- Whether anyone blocked a message's author, asked as each message is saved.
CREATE INDEX IF NOT EXISTS blocks_by_blocked ON blocks (blocked_id);

-- Reports of messages (1.3). A report keeps its own copy of the message
-- (and of its room's name), so it still says what was reported after the
-- message, or its room, is deleted: no foreign key to either.
CREATE TABLE IF NOT EXISTS reports (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id  INTEGER NOT NULL,
    room_id     TEXT NOT NULL,
    room_name   TEXT NOT NULL,
    author_id   TEXT NOT NULL,
    author_name TEXT NOT NULL,
    content     TEXT NOT NULL,
    timestamp   INTEGER NOT NULL,
    edited_at   INTEGER,
    mentions    TEXT,
    reporter_id TEXT NOT NULL REFERENCES users (id),
    reason      TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'open',     -- 'open', 'resolved' or 'dismissed'
    created_at  INTEGER NOT NULL,                 -- Unix seconds
    UNIQUE (message_id, reporter_id)              -- once per message and reporter
);
CREATE INDEX IF NOT EXISTS reports_by_room ON reports (room_id, id);

-- Uploaded files (1.3): the file itself is in the files folder, named by
-- the id (files.py). Unattached until a message of its uploader's carries
-- it, it goes with that message (ON DELETE CASCADE: the server deletes the
-- files it read out first), or after a day if never attached.
CREATE TABLE IF NOT EXISTS uploads (
    id           TEXT PRIMARY KEY,                -- 'file_' + 8 hex digits
    user_id      TEXT NOT NULL REFERENCES users (id),
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,                   -- files.served_type's
    size         INTEGER NOT NULL,                -- bytes
    width        INTEGER,                         -- pixels, for a PNG, JPEG, GIF or WebP, else NULL
    height       INTEGER,
    created_at   INTEGER NOT NULL,                -- Unix seconds
    message_id   INTEGER REFERENCES messages (id) ON DELETE CASCADE,
    position     INTEGER NOT NULL DEFAULT 0       -- its place among its message's attachments
);
CREATE INDEX IF NOT EXISTS uploads_by_message ON uploads (message_id, position)
    WHERE message_id IS NOT NULL;
-- A user's quota: the sizes of their uploads, in one index range.
CREATE INDEX IF NOT EXISTS uploads_by_user ON uploads (user_id, size);
CREATE INDEX IF NOT EXISTS uploads_unattached ON uploads (created_at) WHERE message_id IS NULL;

-- Reactions (1.3): one row per (message, emoji, user).
CREATE TABLE IF NOT EXISTS reactions (
    message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    emoji      TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id),
    -- The emoji's place on the message: 1 for the first used, and so on. A
    -- new reaction with an emoji already there takes its place, so the order
    -- holds when the first to use it takes theirs back.
    place      INTEGER NOT NULL,
    UNIQUE (message_id, emoji, user_id)
);
-- (The UNIQUE constraint's index also finds a message's reactions.)

-- Pinned messages (1.3), at most MAX_PINS a room. The id orders them:
-- newest pin first.
CREATE TABLE IF NOT EXISTS pins (
    id         INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL UNIQUE REFERENCES messages (id) ON DELETE CASCADE,
    room_id    TEXT NOT NULL,
    pinned_by  TEXT NOT NULL REFERENCES users (id),
    pinned_at  INTEGER NOT NULL                   -- Unix seconds
);
CREATE INDEX IF NOT EXISTS pins_by_room ON pins (room_id, id)
