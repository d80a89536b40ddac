-- Every business record (ticket, customer, site, asset, ticket event, complaint, follow-up,
-- user profile, setting, feedback sheet) is one row here: its full current state as a JSON
-- object, its version, and the sequence number of the change that last touched it. Only the
-- write path in package sync writes this table. Columns generated from the JSON serve the
-- indexes that lists and scopes need.
CREATE TABLE records (
	entity   TEXT    NOT NULL,
	id       TEXT    NOT NULL,
	version  INTEGER NOT NULL,
	last_seq INTEGER NOT NULL,
	deleted  INTEGER NOT NULL DEFAULT 0,
	data     TEXT    NOT NULL CHECK (json_valid(data)),
	status        TEXT GENERATED ALWAYS AS (data ->> 'status') VIRTUAL,
	assignee_id   TEXT GENERATED ALWAYS AS (data ->> 'assignee_id') VIRTUAL,
	customer_id   TEXT GENERATED ALWAYS AS (data ->> 'customer_id') VIRTUAL,
	ticket_id     TEXT GENERATED ALWAYS AS (data ->> 'ticket_id') VIRTUAL,
	technician_id TEXT GENERATED ALWAYS AS (data ->> 'technician_id') VIRTUAL,
	serial        TEXT GENERATED ALWAYS AS (data ->> 'serial') VIRTUAL,
	PRIMARY KEY (entity, id)
) WITHOUT ROWID;
CREATE INDEX records_seq ON records (last_seq);
CREATE INDEX records_status ON records (entity, status);
CREATE INDEX records_assignee ON records (entity, assignee_id);
CREATE INDEX records_customer ON records (entity, customer_id);
CREATE INDEX records_ticket ON records (entity, ticket_id);
CREATE INDEX records_technician ON records (entity, technician_id);
CREATE INDEX records_serial ON records (entity, serial);

-- The change log: one row per write, the audit trail and the feed phones pull.
-- fields: {"name": [old, new], ...}; conflicts: {"name": {"lost": value, "kept": value}}.
CREATE TABLE changes (
	seq       INTEGER PRIMARY KEY,
	entity    TEXT    NOT NULL,
	id        TEXT    NOT NULL,
	version   INTEGER NOT NULL,
	op        TEXT    NOT NULL,
	action    TEXT    NOT NULL DEFAULT '',
	actor_id  TEXT    NOT NULL,
	device_id TEXT    NOT NULL DEFAULT '',
	at        TEXT    NOT NULL,
	fields    TEXT    NOT NULL DEFAULT '{}',
	conflicts TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX changes_record ON changes (entity, id, seq);

-- What each technician's devices hold: one row per record in the user's scope, with the
-- sequence number at which the row last changed (entered, was updated, or left: present=0).
-- user_id '*' holds what every field device gets (settings).
CREATE TABLE scope (
	user_id TEXT    NOT NULL,
	entity  TEXT    NOT NULL,
	id      TEXT    NOT NULL,
	seq     INTEGER NOT NULL,
	present INTEGER NOT NULL,
	PRIMARY KEY (user_id, entity, id)
) WITHOUT ROWID;
CREATE INDEX scope_feed ON scope (user_id, seq);
CREATE INDEX scope_record ON scope (entity, id);

CREATE TABLE credentials (
	user_id       TEXT PRIMARY KEY,
	username      TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL
);

CREATE TABLE devices (
	id           TEXT PRIMARY KEY,
	user_id      TEXT NOT NULL,
	device_id    TEXT NOT NULL,
	name         TEXT NOT NULL,
	created_at   TEXT NOT NULL,
	last_seen_at TEXT NOT NULL,
	revoked_at   TEXT,
	UNIQUE (user_id, device_id)
);

CREATE TABLE tokens (
	hash       TEXT PRIMARY KEY,
	user_id    TEXT NOT NULL,
	device     TEXT REFERENCES devices (id),
	created_at TEXT NOT NULL,
	expires_at TEXT NOT NULL,
	revoked_at TEXT
);
CREATE INDEX tokens_device ON tokens (device);

-- Results of pushed mutations, per device and client mutation id, for exactly-once.
-- entity/rid/status let a later mutation on a record whose create was rejected be answered
-- depends_on_rejected.
CREATE TABLE mutations (
	device TEXT NOT NULL,
	mid    TEXT NOT NULL,
	at     TEXT NOT NULL,
	entity TEXT NOT NULL,
	rid    TEXT NOT NULL,
	op     TEXT NOT NULL,
	status TEXT NOT NULL,
	result TEXT NOT NULL,
	PRIMARY KEY (device, mid)
) WITHOUT ROWID;
CREATE INDEX mutations_at ON mutations (at);
CREATE INDEX mutations_record ON mutations (device, entity, rid);

-- Counters for human-readable numbers (ticket numbers per month).
CREATE TABLE counters (
	name  TEXT PRIMARY KEY,
	value INTEGER NOT NULL
);
