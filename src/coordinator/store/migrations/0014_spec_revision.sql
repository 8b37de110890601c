-- Node specs from git (issue 18): the commit of the spec a node last
-- converged to, from its latest heartbeat.
ALTER TABLE nodes ADD COLUMN spec_revision TEXT;
