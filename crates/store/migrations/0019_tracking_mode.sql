-- How a tenant's campaign opens and clicks are tracked: 'off' (links and images left as
-- they are), 'anonymous' (events keep the client address truncated) or 'full'.
ALTER TABLE tenants ADD COLUMN tracking TEXT NOT NULL DEFAULT 'anonymous';
