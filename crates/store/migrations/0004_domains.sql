-- Tenants' sending domains with their DKIM keys. A domain belongs to one tenant.
CREATE TABLE domains (
    domain TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    selector TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    private_key BLOB NOT NULL,
    public_key TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);

CREATE INDEX domains_tenant ON domains(tenant_id);
