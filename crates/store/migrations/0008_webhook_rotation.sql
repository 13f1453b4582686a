-- A rotated webhook secret keeps signing beside the new one for a while, so receivers can
-- switch without dropping a delivery.
ALTER TABLE webhooks ADD COLUMN previous_secret TEXT;
ALTER TABLE webhooks ADD COLUMN previous_until_ms INTEGER;
