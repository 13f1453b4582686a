-- Event counts per tenant and time slot, kept as events are recorded, so dashboards never
-- scan the events table. Minute slots serve the last day; hour slots the longer periods.
-- `provider` groups recipients' domains (gmail, yahoo, microsoft, docomo, ...), `domain`
-- is the sending domain when known ('' otherwise), `category` the bounce category.
CREATE TABLE rollup_minute (
    tenant_id TEXT NOT NULL,
    slot INTEGER NOT NULL,
    kind TEXT NOT NULL,
    domain TEXT NOT NULL,
    provider TEXT NOT NULL,
    category TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, slot, kind, domain, provider, category)
) WITHOUT ROWID;
CREATE TABLE rollup_hour (
    tenant_id TEXT NOT NULL,
    slot INTEGER NOT NULL,
    kind TEXT NOT NULL,
    domain TEXT NOT NULL,
    provider TEXT NOT NULL,
    category TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, slot, kind, domain, provider, category)
) WITHOUT ROWID;
-- Accept→delivered latency histograms (log-linear buckets, `rollups::latency_bucket`).
CREATE TABLE latency_minute (
    tenant_id TEXT NOT NULL,
    slot INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, slot, bucket)
) WITHOUT ROWID;
CREATE TABLE latency_hour (
    tenant_id TEXT NOT NULL,
    slot INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, slot, bucket)
) WITHOUT ROWID;
