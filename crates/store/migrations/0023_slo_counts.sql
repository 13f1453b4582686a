-- The service level objectives' counters, kept across restarts: good and total events per
-- slot (a minute for the burn-rate windows, an hour for the budget's period), by
-- objective name.
CREATE TABLE slo_counts (
    slo TEXT NOT NULL,
    grain_ms INTEGER NOT NULL,
    slot INTEGER NOT NULL,
    good INTEGER NOT NULL,
    total INTEGER NOT NULL,
    PRIMARY KEY (slo, grain_ms, slot)
) WITHOUT ROWID;
