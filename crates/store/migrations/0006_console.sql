-- People who sign in to the web console: a tenant's (tenant_id set, role owner, developer,
-- marketer or viewer) or the platform's operators (tenant_id NULL, role operator).
CREATE TABLE console_logins (
    id TEXT PRIMARY KEY NOT NULL,
    -- Lower-cased.
    email TEXT NOT NULL UNIQUE,
    tenant_id TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    -- argon2id PHC string.
    password_hash TEXT NOT NULL,
    -- RFC 6238 secret when a second factor is on.
    totp_secret BLOB,
    -- "en", "ja", or NULL: the browser's language.
    locale TEXT,
    created_ms INTEGER NOT NULL,
    password_changed_ms INTEGER NOT NULL
);
CREATE INDEX console_logins_tenant ON console_logins(tenant_id);

-- Signed-in browsers. Only SHA-256 of the cookie's value is kept.
CREATE TABLE console_sessions (
    id_sha256 BLOB PRIMARY KEY NOT NULL,
    login_id TEXT NOT NULL REFERENCES console_logins(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    seen_ms INTEGER NOT NULL,
    -- 1 while the password was right and the second factor is still to come.
    pending_second_factor INTEGER NOT NULL,
    address TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX console_sessions_login ON console_sessions(login_id);

-- Who did what, when, from where: console and management actions. Kept when the actor's
-- login is removed (the actor is its e-mail address at the time).
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ms INTEGER NOT NULL,
    -- The tenant acted on; NULL for platform-wide actions.
    tenant_id TEXT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    address TEXT NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log(tenant_id, id);

-- A suspended tenant's API keys and SMTP logins are refused, saying so.
ALTER TABLE tenants ADD COLUMN suspended_ms INTEGER;
ALTER TABLE tenants ADD COLUMN suspended_reason TEXT;
