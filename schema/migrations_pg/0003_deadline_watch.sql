-- The deadline watcher's index, as SQLite's migration 0008_deadline_watch.sql (read it for
-- what the columns mean): each open ticket's unmet response and arrival deadlines, with
-- partial indexes, so that a look of the watcher reads only the tickets whose deadline it
-- crosses.
ALTER TABLE records ADD COLUMN due_response text GENERATED ALWAYS AS (
	CASE WHEN entity = 'ticket' AND deleted = 0
		AND (data ->> 'status') NOT IN ('completed', 'sheet_received', 'followed_up', 'closed', 'cancelled')
		AND COALESCE(data ->> 'accepted_at', '') = ''
	THEN NULLIF(data ->> 'due_response_at', '') END) STORED;
ALTER TABLE records ADD COLUMN due_arrival text GENERATED ALWAYS AS (
	CASE WHEN entity = 'ticket' AND deleted = 0
		AND (data ->> 'status') NOT IN ('completed', 'sheet_received', 'followed_up', 'closed', 'cancelled')
		AND (data ->> 'service_mode') = 'onsite' AND COALESCE(data ->> 'arrived_at', '') = ''
	THEN NULLIF(data ->> 'due_arrival_at', '') END) STORED;
CREATE INDEX records_due_response ON records (due_response) WHERE due_response IS NOT NULL;
CREATE INDEX records_due_arrival ON records (due_arrival) WHERE due_arrival IS NOT NULL;
