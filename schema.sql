-- SwiftChat's tables. store.py runs this file at every start-up, so each
-- statement must be safe to repeat (IF NOT EXISTS).

CREATE TABLE IF NOT EXISTS users (
    id            TEXT PRIMARY KEY,               -- 'user_' + 8 hex digits
    username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,                  -- 'pbkdf2_sha256$iterations$salt$hash'
    created_at    TEXT NOT NULL                   -- ISO-8601 UTC, '2025-07-20T13:30:00Z'
);
CREATE INDEX IF NOT EXISTS users_by_age ON users (created_at, id);

CREATE TABLE IF NOT EXISTS rooms (
    id          TEXT PRIMARY KEY,                 -- 'room_' + 8 hex digits
    name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    description TEXT NOT NULL DEFAULT '',
    creator_id  TEXT NOT NULL REFERENCES users (id),
    created_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rooms_by_age ON rooms (created_at, id);

-- Persisted membership (REST join, WebSocket join_room, room creation).
-- Which room a live connection is in right now is not stored: it lives in
-- swiftchat_ws.py and ends with the connection.
CREATE TABLE IF NOT EXISTS room_members (
    room_id   TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users (id),
    joined_at TEXT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);

CREATE TABLE IF NOT EXISTS messages (
    -- AUTOINCREMENT: ids keep increasing even after the newest message is
    -- deleted with its room, so history paging by id never sees an id reused.
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id   TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users (id),
    content   TEXT NOT NULL,
    timestamp INTEGER NOT NULL                    -- Unix seconds
);
CREATE INDEX IF NOT EXISTS messages_by_room ON messages (room_id, id);

-- Server-wide values that must survive a restart, such as the generated
-- JWT secret.
CREATE TABLE IF NOT EXISTS settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
