-- Blobs (signatures, stamps, photos, paper scans) in the database, so that every instance
-- serves them and an upload begun on one instance resumes on another. A blob, whole or
-- still being uploaded, is one row of blobs; its bytes are rows of blob_chunks, 262144
-- bytes each (the last one shorter), chunk n holding bytes n*262144 onwards. Only a row with
-- complete = 1 is ever served: its content was hashed to its name and decoded as its type.
CREATE TABLE blobs (
	hash     text   PRIMARY KEY, -- lower-case hex SHA-256 of the content
	declared bigint NOT NULL,    -- the Upload-Length the upload began with
	held     bigint NOT NULL DEFAULT 0, -- bytes received so far (the size, once complete)
	owner    text   NOT NULL DEFAULT '', -- whose quota an unfinished upload counts against
	complete bigint NOT NULL DEFAULT 0,
	touched  timestamptz NOT NULL DEFAULT now() -- the last chunk received
);
CREATE INDEX blobs_unfinished ON blobs (owner) WHERE complete = 0;

CREATE TABLE blob_chunks (
	hash text   NOT NULL,
	n    bigint NOT NULL,
	data bytea  NOT NULL,
	PRIMARY KEY (hash, n)
);
-- Images and PDFs are compressed already: store the chunks as they are.
ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

-- The public half of the seal key every instance must share; the private key is never
-- stored here (it is given to each instance as a file or an environment variable).
CREATE TABLE seal_key (
	one           bigint PRIMARY KEY CHECK (one = 1),
	public_key    text   NOT NULL, -- hex Ed25519 public key, as at /verify/key
	registered_at text   NOT NULL
);
