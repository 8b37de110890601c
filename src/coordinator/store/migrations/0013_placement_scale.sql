-- Placement at scale (issue 17): a placement round reads each market's
-- oldest queued jobs (and those of no market) through this index, so a
-- backlog of 100,000 jobs that no parked claim can take never hides the
-- jobs behind it and never costs a scan.

CREATE INDEX jobs_queue_market ON jobs (state, market, created_at, job_id);
