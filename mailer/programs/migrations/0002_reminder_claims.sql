-- Claims, so that two expiration-mailer runs at once (a cron overlap) never send the same
-- reminder twice: a run sets claimed_by/claimed_until on a reminder's certificates in one
-- UPDATE that only matches rows nobody else holds, sends, then records and clears the claim.
-- A run that dies keeps its claim until claimed_until (Unix seconds) passes.
ALTER TABLE certificate_status ADD COLUMN claimed_by VARCHAR(64) NULL;
ALTER TABLE certificate_status ADD COLUMN claimed_until BIGINT NULL;
