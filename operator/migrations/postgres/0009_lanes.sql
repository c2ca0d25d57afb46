-- Signer lanes: the operator instances alive on this database, so that each takes a fair share
-- of the lanes (signer leases). A row is refreshed by its instance's heartbeat and counts as
-- alive until expires_at (unix ms, the store's clock).
CREATE TABLE operator_instances (
    chain_id BIGINT NOT NULL,
    instance_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (chain_id, instance_id)
);
