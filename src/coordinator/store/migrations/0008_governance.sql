-- Governance (issue 12): proposals, the voting power frozen when each one
-- opened, votes and tallies. A proposal copies the live quorum and
-- threshold when it opens, and every client and node ledger account with a
-- balance into `proposal_voters`: that copy is the voting power for the whole
-- vote, whatever balances do afterwards. A voter has one vote per proposal
-- (a second replaces the first until the deadline). The tally moves `state`
-- from 'open' exactly once (a conditional UPDATE), in the same transaction
-- that schedules a passed parameter or mints a passed mint.
-- `proposal_proposers` counts each proposer's open proposals, so the limit
-- holds with several replicas creating at once (a conditional UPDATE of one
-- row). Times are Unix milliseconds; powers are µGAI.

CREATE TABLE proposals (
    proposal_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    parameter TEXT,
    parameter_value BIGINT,
    mint_account TEXT,
    mint_amount BIGINT,
    effective_at BIGINT,
    proposer TEXT NOT NULL,
    state TEXT NOT NULL,
    quorum_bps BIGINT NOT NULL,
    threshold_bps BIGINT NOT NULL,
    total_power BIGINT NOT NULL DEFAULT 0,
    voters BIGINT NOT NULL DEFAULT 0,
    ballots BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    deadline_at BIGINT NOT NULL,
    tallied_at BIGINT,
    yes_power BIGINT,
    no_power BIGINT,
    abstain_power BIGINT,
    result TEXT,
    CHECK (kind IN ('parameter', 'mint', 'signal')),
    CHECK (state IN ('open', 'passed', 'rejected', 'no_quorum')),
    CHECK (kind <> 'parameter' OR (parameter IS NOT NULL AND parameter_value IS NOT NULL
        AND effective_at IS NOT NULL)),
    CHECK (kind <> 'mint' OR (mint_account IS NOT NULL AND mint_amount > 0)),
    CHECK (deadline_at > created_at),
    CHECK (total_power >= 0)
);

CREATE INDEX proposals_open ON proposals (state, deadline_at);
CREATE INDEX proposals_created ON proposals (created_at, proposal_id);

CREATE TABLE proposal_voters (
    proposal_id TEXT NOT NULL REFERENCES proposals (proposal_id),
    voter TEXT NOT NULL,
    power BIGINT NOT NULL,
    PRIMARY KEY (proposal_id, voter),
    CHECK (power > 0)
);

CREATE TABLE proposal_votes (
    proposal_id TEXT NOT NULL,
    voter TEXT NOT NULL,
    choice TEXT NOT NULL,
    power BIGINT NOT NULL,
    via TEXT NOT NULL,
    cast_at BIGINT NOT NULL,
    replaced BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (proposal_id, voter),
    FOREIGN KEY (proposal_id, voter) REFERENCES proposal_voters (proposal_id, voter),
    CHECK (choice IN ('yes', 'no', 'abstain')),
    CHECK (via IN ('api_key', 'node_signature'))
);

CREATE TABLE proposal_proposers (
    proposer TEXT PRIMARY KEY,
    open_proposals BIGINT NOT NULL DEFAULT 0,
    CHECK (open_proposals >= 0)
);
