-- A campaign's report, kept as counters while its events are recorded (no scans): each
-- metric in total (dimension '') and by provider, bounce category, link or hour.
CREATE TABLE campaign_counts (
    campaign_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    dimension TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, metric, dimension)
) WITHOUT ROWID;

-- Who opened or clicked (which link; 0 for any), for the unique counts.
CREATE TABLE campaign_engaged (
    campaign_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    recipient TEXT NOT NULL,
    link INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, kind, recipient, link)
) WITHOUT ROWID;
