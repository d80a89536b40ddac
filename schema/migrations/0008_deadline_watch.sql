-- The deadline watcher's index (docs/alerts.md): each open ticket's unmet response and
-- arrival deadlines as columns with partial indexes, so that a look of the watcher reads
-- only the tickets whose deadline it crosses, however many open tickets wait. The rule is
-- schema.PendingDeadlines' (which has the last word): not accepted by due_response_at; on
-- site and not arrived by due_arrival_at; none once completed, closed or cancelled.
ALTER TABLE records ADD COLUMN due_response TEXT GENERATED ALWAYS AS (
	CASE WHEN entity = 'ticket' AND deleted = 0
		AND data ->> 'status' NOT IN ('completed', 'sheet_received', 'followed_up', 'closed', 'cancelled')
		AND COALESCE(data ->> 'accepted_at', '') = ''
	THEN NULLIF(data ->> 'due_response_at', '') END) VIRTUAL;
ALTER TABLE records ADD COLUMN due_arrival TEXT GENERATED ALWAYS AS (
	CASE WHEN entity = 'ticket' AND deleted = 0
		AND data ->> 'status' NOT IN ('completed', 'sheet_received', 'followed_up', 'closed', 'cancelled')
		AND data ->> 'service_mode' = 'onsite' AND COALESCE(data ->> 'arrived_at', '') = ''
	THEN NULLIF(data ->> 'due_arrival_at', '') END) VIRTUAL;
CREATE INDEX records_due_response ON records (due_response) WHERE due_response IS NOT NULL;
CREATE INDEX records_due_arrival ON records (due_arrival) WHERE due_arrival IS NOT NULL;
