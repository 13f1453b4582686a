-- Work done once per cluster is leased (see migrations/0025_leases.sql); expiry is judged
-- on the database server's clock, the one clock every node shares.
CREATE TABLE leases (
    name TEXT PRIMARY KEY NOT NULL,
    owner TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);
