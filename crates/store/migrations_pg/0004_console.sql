-- The web console's logins, sessions (SHA-256 of the cookie only) and audit log; the same
-- records as the SQLite schema's (migrations 0006, 0009).
CREATE TABLE console_logins (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    tenant_id TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    totp_secret BYTEA,
    locale TEXT,
    created_ms BIGINT NOT NULL,
    password_changed_ms BIGINT NOT NULL,
    display_name TEXT NOT NULL DEFAULT ''
);
CREATE INDEX console_logins_tenant ON console_logins (tenant_id);

CREATE TABLE console_sessions (
    id_sha256 BYTEA PRIMARY KEY,
    login_id TEXT NOT NULL REFERENCES console_logins(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    seen_ms BIGINT NOT NULL,
    pending_second_factor BIGINT NOT NULL,
    address TEXT NOT NULL
);
CREATE INDEX console_sessions_login ON console_sessions (login_id);

CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    time_ms BIGINT NOT NULL,
    tenant_id TEXT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    address TEXT NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);
