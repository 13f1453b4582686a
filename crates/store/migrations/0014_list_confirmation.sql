-- What a double opt-in list sends to new members: the confirmation mail (from one of the
-- tenant's sending domains; the text carries {{ confirm_url }}) and where its subscription
-- form sends people afterwards.
ALTER TABLE contact_lists ADD COLUMN confirm_from TEXT;
ALTER TABLE contact_lists ADD COLUMN confirm_subject TEXT;
ALTER TABLE contact_lists ADD COLUMN confirm_text TEXT;
ALTER TABLE contact_lists ADD COLUMN form_redirect TEXT;
