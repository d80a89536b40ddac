-- What a field device reports in its hello (docs/sync-protocol.md, "hello → welcome"): the
-- app's version, how many mutations wait in its outbox and when the oldest of them was made
-- (NULL when the outbox is empty), and when it last reported.
ALTER TABLE devices ADD COLUMN app_version TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN pending INTEGER;
ALTER TABLE devices ADD COLUMN pending_since TEXT;
ALTER TABLE devices ADD COLUMN reported_at TEXT;
