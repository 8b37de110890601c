-- The dashboard (issue 15): the name a node's agent reports (its
-- `metadata.name`, from the heartbeat's status document), and the indexes
-- that keep the dashboard's pages to index lookups at 10,000 nodes and
-- 100,000 jobs: energy and CO2 of the day, tokens served in the last
-- minute, a node's recent leases, the newest transfers and the top balances.
ALTER TABLE nodes ADD COLUMN name TEXT;

CREATE INDEX job_energy_recorded ON job_energy (recorded_at);
CREATE INDEX gateway_bills_settled ON gateway_bills (settled_at);
CREATE INDEX leases_node ON leases (node_id, granted_at);
CREATE INDEX ledger_transfers_at ON ledger_transfers (at, transfer_id);
CREATE INDEX ledger_accounts_balance ON ledger_accounts (balance);
