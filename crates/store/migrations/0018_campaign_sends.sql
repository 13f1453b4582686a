-- A campaign's send (a sent campaign may still be cancelled: its queued messages are taken
-- back). When it starts its audience is fixed into campaign_recipients (numbered
-- in send order), then spooled in batches. A batch's message ids are recorded (committed = 0)
-- before its messages are spooled, held, and the batch is committed with the cursor in one
-- transaction before delivery may see them; after a crash an uncommitted batch's messages
-- are removed from the spool and the batch is spooled again, so nobody is mailed twice and
-- nobody is skipped.
ALTER TABLE campaigns ADD COLUMN recipients INTEGER;
-- Recipients before this number are spooled or skipped (suppressed or deleted since).
ALTER TABLE campaigns ADD COLUMN cursor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN spooled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN skipped INTEGER NOT NULL DEFAULT 0;

CREATE TABLE campaign_recipients (
    campaign_id TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    -- No foreign key: a contact deleted after the start is skipped, not cascaded here.
    contact_id INTEGER NOT NULL,
    address TEXT NOT NULL,
    PRIMARY KEY (campaign_id, seq)
) WITHOUT ROWID;

CREATE TABLE campaign_batches (
    campaign_id TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    first_seq INTEGER NOT NULL,
    end_seq INTEGER NOT NULL,
    -- The batch's message ids, 16 bytes each (big-endian), in recipient order.
    message_ids BLOB NOT NULL,
    committed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, first_seq)
) WITHOUT ROWID;
CREATE INDEX campaign_batches_open ON campaign_batches(committed) WHERE committed = 0;
