-- The write path's position, shared by every process that writes the database (the server
-- and the command line beside it): the last sequence number handed out, and a counter that
-- moves whenever an account, a device or a token changes (so that open connections check
-- their session again). A writer reads this row inside its write transaction and writes it
-- back before committing; it never trusts a number it remembered from an earlier one.
CREATE TABLE engine_state (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	seq  INTEGER NOT NULL,
	auth INTEGER NOT NULL
);
INSERT INTO engine_state (id, seq, auth) SELECT 1, MAX(
	(SELECT COALESCE(MAX(seq), 0) FROM changes),
	(SELECT COALESCE(MAX(seq), 0) FROM scope),
	(SELECT COALESCE(MAX(last_seq), 0) FROM records)), 0;
