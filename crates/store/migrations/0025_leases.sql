-- Work done once per cluster (webhook dispatch, campaign expansion, the operations runner)
-- is leased: the holder renews its lease well before `until_ms`, and another node takes
-- it once it has lapsed.
CREATE TABLE leases (
    name TEXT PRIMARY KEY NOT NULL,
    owner TEXT NOT NULL,
    until_ms INTEGER NOT NULL
);
