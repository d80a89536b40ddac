-- Records move to a rowid table, and the indexes over columns generated from the JSON hold
-- only the rows that have the column. A record carries its whole JSON document, often over a
-- kilobyte: in a WITHOUT ROWID table every such row sits inside the primary-key B-tree and
-- makes it deep and slow to change. And since every write of a record recomputes every
-- generated column, each index on one is rewritten on every write of every record; a partial
-- index (WHERE column IS NOT NULL) costs nothing for the records without that field.
CREATE TABLE records_v2 (
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
	UNIQUE (entity, id)
);
INSERT INTO records_v2 (entity, id, version, last_seq, deleted, data)
	SELECT entity, id, version, last_seq, deleted, data FROM records ORDER BY last_seq;
DROP TABLE records;
ALTER TABLE records_v2 RENAME TO records;
CREATE INDEX records_seq ON records (last_seq);
CREATE INDEX records_status ON records (entity, status) WHERE status IS NOT NULL;
CREATE INDEX records_assignee ON records (assignee_id) WHERE assignee_id IS NOT NULL;
CREATE INDEX records_customer ON records (entity, customer_id) WHERE customer_id IS NOT NULL;
CREATE INDEX records_ticket ON records (ticket_id, entity, id) WHERE ticket_id IS NOT NULL;
CREATE INDEX records_technician ON records (entity, technician_id) WHERE technician_id IS NOT NULL;
CREATE INDEX records_serial ON records (serial) WHERE serial IS NOT NULL;

-- The same for remembered push results: each holds the record as it was applied.
CREATE TABLE mutations_v2 (
	device TEXT NOT NULL,
	mid    TEXT NOT NULL,
	at     TEXT NOT NULL,
	entity TEXT NOT NULL,
	rid    TEXT NOT NULL,
	op     TEXT NOT NULL,
	status TEXT NOT NULL,
	result TEXT NOT NULL,
	UNIQUE (device, mid)
);
INSERT INTO mutations_v2 SELECT device, mid, at, entity, rid, op, status, result FROM mutations;
DROP TABLE mutations;
ALTER TABLE mutations_v2 RENAME TO mutations;
CREATE INDEX mutations_at ON mutations (at);
CREATE INDEX mutations_record ON mutations (device, entity, rid);
