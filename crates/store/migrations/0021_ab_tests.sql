-- A/B tests: a campaign's `ab` document (variants, test share, metric, wait), and its
-- progress. When an A/B campaign starts, its audience is fixed in a random order and the
-- first test_end recipients are the test group (dealt to the variants in turn). Once the
-- test group is spooled, decide_at_ms says when the winner is decided; the decision
-- (winner, its reason) is one conditional update, and the rest get the winner.
ALTER TABLE campaigns ADD COLUMN ab_test TEXT;
ALTER TABLE campaigns ADD COLUMN test_end INTEGER;
ALTER TABLE campaigns ADD COLUMN decide_at_ms INTEGER;
ALTER TABLE campaigns ADD COLUMN winner INTEGER;
ALTER TABLE campaigns ADD COLUMN winner_reason TEXT;
ALTER TABLE campaigns ADD COLUMN decided_ms INTEGER;
