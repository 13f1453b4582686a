-- The name a console login is shown by (to the person and to the tenant's owners).
ALTER TABLE console_logins ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
