-- A field device's signing key and clock (docs/feedback-sheets.md, "Signed on the device").
-- public_key is base64 of the SubjectPublicKeyInfo of the device's ECDSA P-256 key,
-- registered at login; last_signature is the device's last accepted sheet signature, which
-- its next one must name (a chain per device). clock_offset_ms is the device clock minus the
-- server's, measured at its last hello or push (clock_at).
ALTER TABLE devices ADD COLUMN public_key TEXT;
ALTER TABLE devices ADD COLUMN key_at TEXT;
ALTER TABLE devices ADD COLUMN last_signature TEXT;
ALTER TABLE devices ADD COLUMN clock_offset_ms INTEGER;
ALTER TABLE devices ADD COLUMN clock_at TEXT;

-- The offsets a device reported over time (a row when it moved by more than a second).
CREATE TABLE device_clock (
	device    TEXT    NOT NULL REFERENCES devices (id),
	at        TEXT    NOT NULL, -- the server's time of the report
	offset_ms INTEGER NOT NULL  -- device clock minus server clock
);
CREATE INDEX device_clock_device ON device_clock (device, at);
