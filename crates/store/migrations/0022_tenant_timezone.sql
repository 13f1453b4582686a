-- The tenant's time zone (IANA name): a campaign's local time and sending window apply in
-- it for contacts whose own zone and country say nothing.
ALTER TABLE tenants ADD COLUMN timezone TEXT;
