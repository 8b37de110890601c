-- Green placement (issue 13): a job's energy preference (`any` or
-- `prefer-green`) and, for a green job, until when it waits for a node on
-- solar surplus before any node may take it (Unix milliseconds).

ALTER TABLE jobs ADD COLUMN energy TEXT NOT NULL DEFAULT 'any';
ALTER TABLE jobs ADD COLUMN green_until BIGINT;
