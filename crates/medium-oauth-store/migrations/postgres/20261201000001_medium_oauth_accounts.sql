-- One row per connected Medium account of one OAuth client.
CREATE TABLE medium_oauth_accounts (
    client_id      TEXT    NOT NULL,
    account_id     TEXT    NOT NULL,
    -- The key that sealed `sealed`, so keys can rotate row by row.
    key_id         TEXT    NOT NULL,
    -- The token (access and refresh tokens, expiry, scopes), sealed with
    -- XChaCha20-Poly1305: nonce, then ciphertext and tag.
    sealed         BYTEA   NOT NULL,
    -- A plain copy of the expiry, for listings: not a secret.
    expires_at_ms  BIGINT,
    -- Why the grant is dead (NULL while it is usable).
    dead_reason    TEXT,
    -- Bumped by every write: a refresh commits only over the row it read.
    version        BIGINT  NOT NULL,
    -- The replica refreshing this account, until when.
    lease_owner    TEXT,
    lease_until_ms BIGINT,
    updated_at_ms  BIGINT  NOT NULL,
    PRIMARY KEY (client_id, account_id)
);
