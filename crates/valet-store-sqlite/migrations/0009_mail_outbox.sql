-- The mail outbox (issue 15): mail waits here until it is sent, so neither a
-- crash nor an SMTP outage loses it.
--
-- `sealed` is the core's JSON (a message ready to send, or a request the sender
-- resolves first, such as a password reset asked for by login) sealed with
-- AES-256-GCM under a key derived from the master key, with `mail_id` as
-- associated data: recipients and links are not readable at rest. It becomes
-- NULL once the mail is finished (sent, dropped or given up); the row stays,
-- without content, until it is purged.
--
-- A sender claims due rows by setting `leased_until` (and counting the
-- attempt); no other sender takes them before the lease runs out.
CREATE TABLE mail_outbox (
    mail_id         TEXT    PRIMARY KEY,
    sealed          BLOB,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    leased_until    INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    finished_at     INTEGER,
    -- `sent`, `dropped` (nothing to send, e.g. no such account) or `failed`.
    outcome         TEXT
) STRICT;

CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE finished_at IS NULL;
CREATE INDEX mail_outbox_finished ON mail_outbox (finished_at) WHERE finished_at IS NOT NULL;
