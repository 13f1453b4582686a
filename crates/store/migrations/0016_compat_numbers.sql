-- Numbers for APIs whose clients expect integer ids (Mailjet's v3 REST): a tenant's list,
-- template, property, segment, import or uploaded file gets one on first use, and keeps it.
-- AUTOINCREMENT: a number is never given twice, even after its object is gone.
CREATE TABLE compat_numbers (
    number INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    object_id TEXT NOT NULL,
    UNIQUE (tenant_id, kind, object_id)
);

-- Results of the compatible APIs' batch jobs done while the client waited (Mailjet's
-- managemanycontacts), kept so that the client's status poll finds them.
CREATE TABLE compat_jobs (
    number INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    -- JSON, as the API shows it.
    result TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX compat_jobs_tenant ON compat_jobs(tenant_id, created_ms);
