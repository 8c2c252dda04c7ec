//! Logins that any replica can finish: the pending authorization (its
//! sealed `state`, requested scopes and time to live) waits in the shared
//! database, so the callback may land on another replica than the one that
//! sent the user to Medium.

use std::fmt::Write as _;
use std::time::Duration;

use medium_oauth::{PendingAuthorization, Scope, ScopeSet, Token, Url};
use sha2::{Digest, Sha256};

use crate::{Accounts, StoreError};

/// Most logins one client may have pending at once: ten minutes (the
/// default time to live) of 160 logins a second. Beyond it the store
/// refuses new ones rather than let a flood of unfinished logins fill the
/// database; each row is a few hundred bytes.
pub const MAX_PENDING_LOGINS: u64 = 100_000;

/// Longest a pending login is kept, whatever the client's pending time to
/// live says: a user who takes longer than a day starts again, and the
/// expiry stays far from overflowing the database's integers.
pub const MAX_PENDING_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Fewest bytes of a login's browser binding: 128 bits, past guessing.
pub const MIN_BINDING_BYTES: usize = 16;

impl Accounts {
    /// Starts a login that any replica sharing the database can finish:
    /// the URL to send the user to. Its `state` is kept sealed in the
    /// database for the client's pending time to live (by the database's
    /// clock), found by the SHA-256 of the state and `browser`, never
    /// stored readable.
    ///
    /// `browser` binds the login to the browser that began it: a secret
    /// random value (at least [`MIN_BINDING_BYTES`]) the service keeps
    /// there, such as an `HttpOnly`, `SameSite=Lax` cookie set now, or the
    /// user's session id. Only a callback arriving with the same value
    /// finishes it, so a callback sent to someone else's browser (login
    /// CSRF) matches nothing.
    pub async fn begin_login(&self, scopes: ScopeSet, browser: &str) -> Result<Url, StoreError> {
        check_binding(browser)?;
        let (client, db, client_id) = self.parts();
        let (url, pending) = client.authorize_url(scopes).map_err(StoreError::Login)?;
        let state = pending.state().expose_secret();
        let ttl = pending.expires_in().min(MAX_PENDING_TTL);
        // At most a day in milliseconds: fits, and the database's clock
        // plus it cannot overflow.
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(0);
        let kept = db
            .insert_login(
                client_id,
                &digest(state, browser),
                state,
                &scopes.to_string(),
                ttl_ms,
                MAX_PENDING_LOGINS,
            )
            .await?;
        if !kept {
            return Err(StoreError::TooManyPendingLogins {
                limit: MAX_PENDING_LOGINS,
            });
        }
        Ok(url)
    }

    /// Finishes a login begun on any replica with its callback (the full
    /// redirect URL, or its query): takes the pending login out of the
    /// database in the statement that reads it, so only one replica ever
    /// completes it; checks the callback against it as
    /// [`PendingAuthorization::verify`] does (the `state` compared in
    /// constant time, then expiry, denial and code); and exchanges the
    /// code. The caller then names the account (say, by the user's Medium
    /// id from [`OAuthClient::me`](medium_oauth::OAuthClient::me)) and
    /// stores the token with [`Accounts::connect`].
    ///
    /// A callback whose `state` and `browser` match no pending login
    /// (forged, used already, expired and swept, or arriving in another
    /// browser than the one that began it) is [`StoreError::Login`] with
    /// [`medium_oauth::Error::CsrfMismatch`], and touches nothing. Any
    /// other failure uses the login up: the user starts again.
    pub async fn finish_login(&self, callback: &str, browser: &str) -> Result<Token, StoreError> {
        check_binding(browser)?;
        let (client, db, client_id) = self.parts();
        let state = PendingAuthorization::callback_state(callback).map_err(StoreError::Login)?;
        let Some(taken) = db
            .take_login(client_id, &digest(state.expose_secret(), browser))
            .await?
        else {
            return Err(StoreError::Login(medium_oauth::Error::CsrfMismatch));
        };
        if taken.left_ms <= 0 {
            // Past its time by the database's clock.
            return Err(StoreError::Login(medium_oauth::Error::AuthorizationExpired));
        }
        let left = Duration::from_millis(u64::try_from(taken.left_ms).unwrap_or(0));
        let requested = parse_scopes(&taken.scopes)?;
        let pending = PendingAuthorization::resume(taken.state, requested, left);
        client
            .complete(&pending, callback)
            .await
            .map_err(StoreError::Login)
    }
}

fn check_binding(browser: &str) -> Result<(), StoreError> {
    if browser.len() < MIN_BINDING_BYTES {
        return Err(StoreError::WeakLoginBinding);
    }
    Ok(())
}

/// The key a pending login is found by: SHA-256 of its state and browser
/// binding, in hex. A state is 256 random bits, so the digest tells
/// nothing of either; each is length-prefixed, so no two pairs share one.
fn digest(state: &str, browser: &str) -> String {
    let mut hash = Sha256::new();
    for part in [state, browser] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize()
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            // Writing to a String cannot fail.
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// Scopes as the row names them; another writer may have stored anything.
fn parse_scopes(names: &str) -> Result<ScopeSet, StoreError> {
    names
        .split(',')
        .filter(|name| !name.is_empty())
        .try_fold(ScopeSet::EMPTY, |set, name| {
            Scope::from_wire_name(name)
                .map(|scope| set.with(scope))
                .ok_or_else(|| {
                    StoreError::LoginUnreadable("names a scope Medium does not have".into())
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_sha256_of_both_parts_in_hex() {
        let mut hash = Sha256::new();
        hash.update(3u64.to_be_bytes());
        hash.update(b"abc");
        hash.update(1u64.to_be_bytes());
        hash.update(b"d");
        let expected: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(digest("abc", "d"), expected);
        assert_eq!(expected.len(), 64);
        assert_ne!(digest("ab", "cd"), digest("abc", "d"));
    }

    #[test]
    fn bindings_shorter_than_128_bits_are_refused() {
        assert!(matches!(
            check_binding(&"x".repeat(MIN_BINDING_BYTES - 1)),
            Err(StoreError::WeakLoginBinding)
        ));
        assert!(check_binding(&"x".repeat(MIN_BINDING_BYTES)).is_ok());
    }

    #[test]
    fn scopes_round_trip_and_unknown_names_are_refused() {
        let set = ScopeSet::all();
        assert_eq!(parse_scopes(&set.to_string()).unwrap(), set);
        assert_eq!(parse_scopes("").unwrap(), ScopeSet::EMPTY);
        assert!(matches!(
            parse_scopes("basicProfile,nope"),
            Err(StoreError::LoginUnreadable(_))
        ));
    }
}
