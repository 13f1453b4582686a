-- The audience: a tenant's contacts with typed properties it declares, and its lists with
-- a membership status and consent record per contact. List counts are kept as members
-- change, never counted on read.
CREATE TABLE contact_properties (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- text, number, datetime, boolean or choice.
    kind TEXT NOT NULL,
    -- JSON array of the allowed values of a choice; NULL otherwise.
    choices TEXT,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
) WITHOUT ROWID;

CREATE TABLE contacts (
    id INTEGER PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    -- Lower-cased, trimmed.
    address TEXT NOT NULL,
    -- IANA zone name, BCP 47 language tag, ISO 3166-1 alpha-2 (upper case).
    timezone TEXT,
    locale TEXT,
    country TEXT,
    -- JSON object of declared properties: text and choice as strings, numbers as numbers,
    -- date-times as Unix milliseconds, booleans as true/false.
    props TEXT NOT NULL DEFAULT '{}',
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    UNIQUE (tenant_id, address)
);
CREATE INDEX contacts_tenant_id ON contacts(tenant_id, id);

CREATE TABLE contact_lists (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- 1: new members are unconfirmed until they follow the confirmation link.
    double_opt_in INTEGER NOT NULL,
    subscribed INTEGER NOT NULL DEFAULT 0,
    unconfirmed INTEGER NOT NULL DEFAULT 0,
    unsubscribed INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE list_members (
    list_id TEXT NOT NULL REFERENCES contact_lists(id) ON DELETE CASCADE,
    contact_id INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    -- subscribed, unconfirmed or unsubscribed.
    status TEXT NOT NULL,
    -- The consent record: how (api, import, form, console...), when, from which address,
    -- and when it was confirmed (double opt-in).
    source TEXT NOT NULL,
    consent_ms INTEGER NOT NULL,
    consent_address TEXT,
    confirmed_ms INTEGER,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (list_id, contact_id)
) WITHOUT ROWID;
CREATE INDEX list_members_contact ON list_members(contact_id);
CREATE INDEX list_members_status ON list_members(list_id, status, contact_id);

-- Saved segments: the tenant's query text, checked again against the declarations each time
-- it is used (a property may have been removed since).
CREATE TABLE segments (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    query TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);
