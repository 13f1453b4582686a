-- Messages accepted per tenant and UTC day, for daily quotas across restarts.
CREATE TABLE tenant_usage (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    day INTEGER NOT NULL,
    messages INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, day)
);
