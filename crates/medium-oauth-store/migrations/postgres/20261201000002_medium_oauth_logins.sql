-- Logins begun on one replica whose callback may land on another: each
-- row lives until its callback arrives (and is deleted in the same
-- statement that reads it, so it completes once) or its time to live ends.
CREATE TABLE medium_oauth_logins (
    client_id     TEXT    NOT NULL,
    -- SHA-256 of the login's state and browser binding, in hex: finds the
    -- row (only for the browser that began the login) without the
    -- state itself being stored readable.
    state_digest  TEXT    NOT NULL,
    key_id        TEXT    NOT NULL,
    -- The state, sealed like the tokens (a secret: a callback carrying it
    -- completes the login).
    sealed        BYTEA   NOT NULL,
    -- The scopes requested, as Medium's comma-separated names.
    scopes        TEXT    NOT NULL,
    -- By the database's clock, so every replica agrees when it ends.
    expires_at_ms BIGINT  NOT NULL,
    PRIMARY KEY (client_id, state_digest)
);

-- Each new login sweeps its client's expired ones, and counts the rest.
CREATE INDEX medium_oauth_logins_expiry ON medium_oauth_logins (client_id, expires_at_ms);
