-- Contact imports as durable jobs. The uploaded file stays in the data directory; each batch
-- of rows is written in one transaction with the job's counters and its resume point, so a
-- crash resumes where the last batch ended without writing a row twice. A job is worked by
-- one process at a time: the owner holds a lease it renews with each batch.
CREATE TABLE import_jobs (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    -- The file's name, what the tenant called it, and its detected encoding.
    file TEXT NOT NULL,
    name TEXT NOT NULL,
    encoding TEXT NOT NULL,
    -- JSON: [target per column], a target being "address", "timezone", "locale",
    -- "country", "property:<name>" or null (ignored).
    mapping TEXT NOT NULL,
    -- update or keep (existing contacts).
    existing TEXT NOT NULL,
    -- Add every imported contact to this list with this status.
    list_id TEXT,
    list_status TEXT,
    -- queued, running, done or failed.
    state TEXT NOT NULL,
    owner TEXT,
    lease_until_ms INTEGER NOT NULL DEFAULT 0,
    total_bytes INTEGER NOT NULL,
    done_bytes INTEGER NOT NULL DEFAULT 0,
    -- Records (after the header) consumed: where a resumed job starts.
    records_done INTEGER NOT NULL DEFAULT 0,
    added INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    unchanged INTEGER NOT NULL DEFAULT 0,
    refused INTEGER NOT NULL DEFAULT 0,
    suppressed INTEGER NOT NULL DEFAULT 0,
    failure TEXT,
    created_ms INTEGER NOT NULL,
    started_ms INTEGER,
    finished_ms INTEGER
);
CREATE INDEX import_jobs_tenant ON import_jobs(tenant_id, created_ms);
CREATE INDEX import_jobs_state ON import_jobs(state);

-- Rows an import refused: line number in the file and why.
CREATE TABLE import_errors (
    job_id TEXT NOT NULL REFERENCES import_jobs(id) ON DELETE CASCADE,
    line INTEGER NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (job_id, line)
) WITHOUT ROWID;
