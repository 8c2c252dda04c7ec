//! `token`, `status` and `logout`: everything that works from the stored
//! profile.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use medium_oauth::{DEFAULT_REFRESH_MARGIN, Error, Token, TokenSource};

use crate::failure::{Failure, printable};
use crate::profile::{DEFAULT_PROFILE, Profile, ProfileStore, StoreArgs, StoredClient, logged_in};
use crate::session::{UNUSED_REDIRECT, host_of, refreshing_client, refreshing_source};
use crate::setup::{self, ClientArgs};

/// The last second RFC 3339 can write, 9999-12-31T23:59:59Z, as seconds
/// since the Unix epoch (humantime panics past it, and before the epoch).
const LATEST_RFC3339_SECS: u64 = 253_402_300_799;

#[derive(Args, Debug)]
pub struct TokenArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    store: StoreArgs,
    /// Refresh now, even if the token is still valid.
    #[arg(long)]
    force_refresh: bool,
    /// Print the token record as JSON: access token, expiry, scopes.
    #[arg(long)]
    json: bool,
    /// With --json, include the refresh token too: whoever reads it can
    /// mint tokens until the grant is revoked.
    #[arg(long, requires = "json")]
    include_refresh_token: bool,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Print the status as JSON.
    #[arg(long)]
    json: bool,
    /// Do not check the token with the server.
    #[arg(long)]
    offline: bool,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    #[command(flatten)]
    store: StoreArgs,
}

/// `at` in RFC 3339, when it can be written so (1970 to 9999).
fn rfc3339(at: SystemTime) -> Option<String> {
    let secs = at.duration_since(UNIX_EPOCH).ok()?.as_secs();
    (secs <= LATEST_RFC3339_SECS).then(|| humantime::format_rfc3339_seconds(at).to_string())
}

/// When the token expires, for people: an RFC 3339 time and how far off
/// from `now`. Never panics, whatever the file or the server said.
pub fn describe_expiry(expires_at: Option<SystemTime>, now: SystemTime) -> String {
    let Some(at) = expires_at else {
        return "never".into();
    };
    let when = rfc3339(at).unwrap_or_else(|| {
        if at < UNIX_EPOCH {
            "before 1970 (the server or the clock is wrong)".into()
        } else {
            "after the year 9999 (the server or the clock is wrong)".into()
        }
    });
    match at.duration_since(now) {
        Ok(left) => format!("{when} (in {})", roughly(left)),
        Err(_) => format!("{when} (expired)"),
    }
}

/// A duration to the largest whole unit: "59 days", "3 hours", "12 minutes".
fn roughly(d: Duration) -> String {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    let secs = d.as_secs();
    let (n, unit) = match secs {
        s if s >= DAY => (s / DAY, "day"),
        s if s >= HOUR => (s / HOUR, "hour"),
        s if s >= MINUTE => (s / MINUTE, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

pub async fn token(args: TokenArgs) -> Result<(), Failure> {
    let store = args.store.open(DEFAULT_PROFILE)?;
    let (profile, token) = logged_in(&store)?;
    let now = SystemTime::now();
    let due = args.force_refresh || token.expires_within(DEFAULT_REFRESH_MARGIN, now);
    let token = if due {
        refreshed(&args, store, &profile, token, now).await?
    } else {
        Arc::new(token)
    };
    if args.json {
        let mut record = token.to_record();
        if !args.include_refresh_token {
            record.refresh_token = None;
        }
        let record =
            serde_json::to_string_pretty(&record).map_err(|e| Failure::other(e.to_string()))?;
        outln!("{record}");
    } else {
        // Printing the token is this command's purpose (for scripts).
        outln!("{}", token.access_token().expose_secret());
    }
    Ok(())
}

/// A token to replace the due `token`: one another process saved
/// meanwhile, or else a refreshed one (always refreshed with
/// --force-refresh). When a refresh cannot be had but `token` is still
/// valid (and no refresh was forced), `token` with a warning: a script
/// keeps working until the token really expires.
async fn refreshed(
    args: &TokenArgs,
    store: ProfileStore,
    profile: &Profile,
    token: Token,
    now: SystemTime,
) -> Result<Arc<Token>, Failure> {
    let usable = !args.force_refresh && !token.expires_within(Duration::ZERO, now);
    let fallback = |why: String| {
        crate::warn(format!(
            "{why}; printing the current token, which expires {}",
            describe_expiry(token.expires_at(), now)
        ));
        Arc::new(token.clone())
    };
    let client = match refreshing_client(&args.client, &profile.client) {
        Ok(client) => client,
        Err(failure) if usable => return Ok(fallback(failure.message)),
        Err(failure) => return Err(failure),
    };
    let host = host_of(client.api_server().as_str());
    let mut builder = refreshing_source(client, store);
    if usable {
        // A valid token is at hand: one try, not a schedule of retries.
        builder = builder.max_attempts(1);
    }
    let source = builder.build().await?;
    // Only --force-refresh forces. Forcing a token merely due (or expired)
    // made processes started together refresh one after another (issue
    // 22): one whose source loaded the token another had just saved
    // refreshed that one too.
    let result = if args.force_refresh {
        source.force_refresh().await
    } else {
        // A source schedules the token it starts with no earlier than
        // halfway through the life left then, so a token due by the day's
        // margin looks fresh to it and `token` would hand it out
        // unrefreshed. Invalidated, it is never handed out: `token` takes,
        // under the store's lock, a fresh token another process saved, and
        // refreshes only if none did. A source that loaded such a token
        // already (saved since the file was read here) is left as it is.
        source.invalidate(token.access_token());
        source.token().await
    };
    match result {
        Ok(token) => Ok(token),
        Err(e) if usable && !e.requires_reauthorization() => Ok(fallback(format!(
            "could not refresh the token: {}",
            Failure::from_server(e, &host).message
        ))),
        Err(e) => Err(Failure::from_server(e, &host)),
    }
}

/// What the server said of the token.
enum Check {
    Skipped,
    Expired,
    Valid(Option<medium_oauth::api::User>),
    Failed(Failure),
}

impl Check {
    fn label(&self) -> &'static str {
        match self {
            Check::Skipped => "skipped",
            Check::Expired => "expired",
            Check::Valid(_) => "valid",
            Check::Failed(f) if f.code == Failure::REAUTHORIZE => "refused",
            Check::Failed(f) if f.code == Failure::NETWORK => "unreachable",
            Check::Failed(_) => "error",
        }
    }

    fn describe(&self, profile: &Profile) -> String {
        match self {
            Check::Skipped => "skipped (--offline)".into(),
            Check::Expired => {
                "not checked: the token has expired (`medium-oauth token` refreshes it)".into()
            }
            Check::Valid(_) => format!(
                "the server at {} accepts the token",
                host_of(profile.client.api_server())
            ),
            Check::Failed(f) if f.code == Failure::NETWORK => {
                let mut text = format!("the server cannot be reached: {}", f.message);
                if profile.client.in_process_emulator {
                    text.push_str(
                        " (the emulator of `login --emulator` stops when the login ends)",
                    );
                }
                text
            }
            Check::Failed(f) => f.message.clone(),
        }
    }
}

/// Asks the API server who the token belongs to, as `gh auth status` does.
async fn check(profile: &Profile, token: &Token) -> Check {
    if token.expires_within(Duration::ZERO, SystemTime::now()) {
        return Check::Expired;
    }
    let servers = StoredClient {
        api_url: profile.client.api_url.clone(),
        ..StoredClient::default()
    };
    let client = match setup::client_builder(
        profile.client.client_id.as_deref().unwrap_or_default(),
        &crate::profile::StoredSecret::new(""),
        UNUSED_REDIRECT.into(),
        &servers,
    )
    .build()
    {
        Ok(client) => client,
        Err(e) => return Check::Failed(e.into()),
    };
    let host = host_of(client.api_server().as_str());
    match client.me(token.access_token()).await {
        // An implausible description is not shown; the stored one is.
        Ok(user) => Check::Valid(crate::profile::plausible_user(user)),
        // Authenticated, but without basicProfile the server does not say
        // who: Medium answers 401 with its missing-scope code, some servers
        // 403.
        Err(Error::Api { status: 403, .. }) => Check::Valid(None),
        Err(Error::Api {
            status: 401,
            errors,
            ..
        }) if errors
            .iter()
            .any(|e| e.code == medium_oauth::MISSING_SCOPE_CODE) =>
        {
            Check::Valid(None)
        }
        Err(Error::Api {
            status: 401,
            errors,
            ..
        }) => Check::Failed(Failure::new(
            Failure::REAUTHORIZE,
            format!(
                "{host} refused the token (HTTP 401{}); run `medium-oauth login`",
                errors
                    .first()
                    .map(|e| format!(": {}", e.message))
                    .unwrap_or_default()
            ),
        )),
        Err(e) => Check::Failed(Failure::from_server(e, &host)),
    }
}

pub async fn status(args: StatusArgs) -> Result<(), Failure> {
    let store = args.store.open(DEFAULT_PROFILE)?;
    let (profile, token) = logged_in(&store)?;
    let check = if args.offline {
        Check::Skipped
    } else {
        check(&profile, &token).await
    };
    let user = match &check {
        Check::Valid(Some(user)) => Some(user),
        _ => profile.user.as_ref(),
    };
    let now = SystemTime::now();
    if args.json {
        let json = serde_json::json!({
            "logged_in": true,
            "user": user.map(|u| serde_json::json!({
                "id": u.id, "username": u.username, "name": u.name, "url": u.url,
            })),
            "scopes": token.scopes().to_string().split(',').filter(|s| !s.is_empty()).collect::<Vec<_>>(),
            "expires_at": token.expires_at().and_then(rfc3339),
            "expires_at_ms": token.to_record().expires_at_ms,
            "expired": token.expires_within(Duration::ZERO, now),
            "refresh_token_stored": token.refresh_token().is_some(),
            "client_secret_stored": profile.client.client_secret.is_some(),
            "api_server": profile.client.api_server(),
            "credentials": store.path().display().to_string(),
            "check": {"result": check.label(), "detail": check.describe(&profile)},
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&json).map_err(|e| Failure::other(e.to_string()))?
        );
    } else {
        match user {
            Some(user) => outln!(
                "Logged in as {} (@{})",
                printable(&user.name),
                printable(&user.username)
            ),
            None => {
                outln!("Logged in (the server has not said who: the token lacks basicProfile)")
            }
        }
        outln!("Scopes: {}", token.scopes());
        outln!("Expires: {}", describe_expiry(token.expires_at(), now));
        outln!(
            "Refresh token: {}",
            if token.refresh_token().is_some() {
                "stored"
            } else {
                "none"
            }
        );
        outln!(
            "Client secret: {}",
            if profile.client.client_secret.is_some() {
                "stored (refreshes need no options)"
            } else {
                "not stored (give it to `token` for refreshes)"
            }
        );
        outln!("API server: {}", printable(profile.client.api_server()));
        outln!("Token check: {}", printable(&check.describe(&profile)));
        outln!("Credentials: {}", store.path().display());
    }
    match check {
        Check::Failed(failure) => Err(failure),
        _ => Ok(()),
    }
}

pub async fn logout(args: LogoutArgs) -> Result<(), Failure> {
    let store = ProfileStore::at(args.store.path(DEFAULT_PROFILE)?);
    if store.remove().await? {
        outln!("Removed {}", store.path().display());
    } else {
        outln!("Not logged in (nothing at {})", store.path().display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: humantime panics before 1970 and after 9999, and
    /// `status` died with exit 101 on every run once such an expiry was
    /// stored.
    #[test]
    fn expiries_before_1970_and_after_9999_are_described_not_panicked_on() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let before = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(
            describe_expiry(Some(before), now),
            "before 1970 (the server or the clock is wrong) (expired)"
        );
        let after = UNIX_EPOCH + Duration::from_secs(LATEST_RFC3339_SECS + 1);
        assert!(describe_expiry(Some(after), now).starts_with("after the year 9999"));
        let last = UNIX_EPOCH + Duration::from_secs(LATEST_RFC3339_SECS);
        assert!(describe_expiry(Some(last), now).starts_with("9999-12-31T23:59:59Z (in "));
        assert!(describe_expiry(Some(UNIX_EPOCH), now).starts_with("1970-01-01T00:00:00Z"));
        let far = UNIX_EPOCH + Duration::from_millis(i64::MAX as u64);
        assert!(describe_expiry(Some(far), now).starts_with("after the year 9999"));
        assert_eq!(describe_expiry(None, now), "never");
    }
}
