-- The notification outbox: one row per message to deliver, written in the same transaction
-- as the record that raised it (a ticket event, a complaint, a returned sheet), so that an
-- alert exists exactly when its cause does. source names that record ("ticket_event/ID");
-- the unique key keeps one message per cause, channel and recipient. The sender delivers
-- pending rows whose next_at has come, records each attempt, and marks the row sent, or
-- failed once it gave up (listed for admins at GET /api/v1/alerts/failed).
CREATE TABLE outbox (
	id          INTEGER PRIMARY KEY,
	source      TEXT    NOT NULL,
	kind        TEXT    NOT NULL,
	channel     TEXT    NOT NULL,
	target      TEXT    NOT NULL DEFAULT '', -- email address or phone; '' for group channels
	mentions    TEXT    NOT NULL DEFAULT '[]', -- phones a group robot names
	recipients  TEXT    NOT NULL DEFAULT '[]', -- user ids the message is for
	text        TEXT    NOT NULL,
	facts       TEXT    NOT NULL CHECK (json_valid(facts)),
	created_at  TEXT    NOT NULL,
	next_at     TEXT    NOT NULL,
	attempts    INTEGER NOT NULL DEFAULT 0,
	status      TEXT    NOT NULL DEFAULT 'pending', -- pending, sent, failed
	last_answer TEXT    NOT NULL DEFAULT '',
	done_at     TEXT,
	UNIQUE (source, channel, target)
);
CREATE INDEX outbox_due ON outbox (status, next_at);

-- Every delivery attempt with the remote's answer (status and body, or the error).
CREATE TABLE outbox_attempts (
	outbox_id INTEGER NOT NULL REFERENCES outbox (id),
	n         INTEGER NOT NULL,
	at        TEXT    NOT NULL,
	ok        INTEGER NOT NULL,
	answer    TEXT    NOT NULL,
	PRIMARY KEY (outbox_id, n)
);

-- Each person's choice of events and channels; without a row the role's defaults apply.
CREATE TABLE alert_prefs (
	user_id    TEXT PRIMARY KEY,
	prefs      TEXT NOT NULL CHECK (json_valid(prefs)),
	updated_at TEXT NOT NULL
);
