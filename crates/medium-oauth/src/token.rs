//! Tokens as Medium issues them, parsed leniently where Medium may grow
//! (unknown scopes) and strictly where a mistake would hurt (no access token).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::{AccessToken, Error, RefreshToken, Scope, ScopeSet};

/// The scopes a token was granted: those this version knows, and the names of
/// any it does not (kept, not dropped, so a newer Medium scope does not break
/// the token).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GrantedScopes {
    /// Known scopes.
    pub known: ScopeSet,
    /// Names this version does not know.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown: Vec<String>,
}

impl GrantedScopes {
    /// Sorts scope names into known and unknown. Unknown names are kept
    /// only when they look like scope names (see [`MAX_UNKNOWN_SCOPES`]): they
    /// come from the server and end up on terminals and pages.
    pub fn from_names<I: IntoIterator<Item = S>, S: AsRef<str>>(names: I) -> Self {
        let mut granted = GrantedScopes::default();
        for name in names {
            let name = name.as_ref();
            match name.parse::<Scope>() {
                Ok(scope) => granted.known.insert(scope),
                Err(_)
                    if looks_like_a_scope(name)
                        && granted.unknown.len() < MAX_UNKNOWN_SCOPES
                        && !granted.unknown.iter().any(|u| u == name) =>
                {
                    granted.unknown.push(name.to_owned());
                }
                Err(_) => {}
            }
        }
        granted
    }

    /// Drops unknown names that contain any of `secrets`, as a server that
    /// echoes the request into `scope` would send.
    pub(crate) fn forget_echoes(&mut self, secrets: &[&str]) {
        self.unknown.retain(|name| {
            !secrets
                .iter()
                .any(|secret| !secret.is_empty() && name.contains(secret))
        });
    }

    /// Whether `scope` was granted.
    pub fn contains(&self, scope: Scope) -> bool {
        self.known.contains(scope)
    }

    /// `Ok` if `scope` was granted, else [`Error::MissingScope`]: the one-line
    /// check before a call that needs it.
    pub fn require(&self, scope: Scope) -> Result<(), Error> {
        if self.contains(scope) {
            Ok(())
        } else {
            Err(Error::MissingScope(scope))
        }
    }

    /// The requested scopes that were not granted.
    pub fn missing_from(&self, requested: ScopeSet) -> ScopeSet {
        requested - self.known
    }
}

/// Most unknown scope names kept from one token: Medium has six scopes, so
/// more unknown ones than this is a server sending junk.
pub const MAX_UNKNOWN_SCOPES: usize = 32;

/// Longest unknown scope name kept, in bytes; Medium's longest is 17.
const MAX_SCOPE_NAME_BYTES: usize = 64;

/// A letter, then letters, digits and `_.:-`, as scope names are spelled by
/// Medium and by other OAuth servers.
fn looks_like_a_scope(name: &str) -> bool {
    name.len() <= MAX_SCOPE_NAME_BYTES
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c))
}

impl std::fmt::Display for GrantedScopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self.known.iter().map(Scope::as_str).collect();
        names.extend(self.unknown.iter().map(String::as_str));
        f.write_str(&names.join(","))
    }
}

/// An access token with what came with it.
#[derive(Clone)]
pub struct Token {
    access_token: AccessToken,
    refresh_token: Option<RefreshToken>,
    expires_at: Option<SystemTime>,
    scopes: GrantedScopes,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("access_token", &self.access_token)
            .field("refresh_token", &self.refresh_token)
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl Token {
    /// A token from its parts, e.g. a self-issued integration token that never
    /// expires (`expires_at: None`).
    pub fn new(
        access_token: AccessToken,
        refresh_token: Option<RefreshToken>,
        expires_at: Option<SystemTime>,
        scopes: GrantedScopes,
    ) -> Self {
        Self {
            access_token,
            refresh_token,
            expires_at,
            scopes,
        }
    }

    /// The bearer token.
    pub fn access_token(&self) -> &AccessToken {
        &self.access_token
    }

    /// The refresh token, when Medium issued one.
    pub fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }

    /// When the access token expires (wall-clock time); `None` if never.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// The granted scopes.
    pub fn scopes(&self) -> &GrantedScopes {
        &self.scopes
    }

    /// Whether the token is expired, or will be within `margin`, at `now`.
    pub fn expires_within(&self, margin: Duration, now: SystemTime) -> bool {
        self.expires_at
            .is_some_and(|at| at.duration_since(now).map_or(true, |left| left <= margin))
    }

    /// This token without unknown scope names that echo `secrets`.
    pub(crate) fn forget_echoed_scopes(mut self, secrets: &[&str]) -> Self {
        self.scopes.forget_echoes(secrets);
        self
    }

    /// This token with `previous` as its refresh token when the refresh
    /// response carried none (Medium may omit it; the old one stays valid).
    pub(crate) fn keep_refresh_token(mut self, previous: &RefreshToken) -> Self {
        if self.refresh_token.is_none() {
            self.refresh_token = Some(previous.clone());
        }
        self
    }

    /// The token as a plain, serializable record, secrets included: for
    /// token stores and for explicit `--json` style output only.
    pub fn to_record(&self) -> TokenRecord {
        TokenRecord {
            access_token: self.access_token.expose_secret().to_owned(),
            refresh_token: self
                .refresh_token
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
            expires_at_ms: self.expires_at.map(system_time_to_ms),
            scopes: self.scopes.clone(),
        }
    }

    /// The token a record describes. Unknown scope names are kept as
    /// [`GrantedScopes::from_names`] keeps them: a record is read back from
    /// a file anyone may have edited, and scopes get printed.
    pub fn from_record(record: TokenRecord) -> Self {
        let GrantedScopes { known, unknown } = record.scopes;
        let mut scopes = GrantedScopes::from_names(unknown);
        scopes.known = scopes.known | known;
        Self {
            access_token: AccessToken::new(record.access_token),
            refresh_token: record.refresh_token.map(RefreshToken::new),
            expires_at: record.expires_at_ms.and_then(ms_to_system_time),
            scopes,
        }
    }

    /// Parses a token response body: Medium's JSON, with unknown scopes kept.
    /// An error never quotes the body.
    pub fn from_response_body(body: &[u8]) -> Result<Self, Error> {
        // serde's message can quote the input; say where, not what.
        let wire: WireToken = serde_json::from_slice(body)
            .map_err(|e| Error::MalformedBody(crate::client::describe_json_error(&e)))?;
        wire.into_token()
    }
}

/// A [`Token`] with its secrets in the clear, for serialization. It has no
/// `Debug`, so it cannot slip into a log by accident.
#[derive(Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The bearer token.
    pub access_token: String,
    /// The refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Expiry, milliseconds since the Unix epoch (Medium's unit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<i64>,
    /// Granted scopes.
    #[serde(default)]
    pub scopes: GrantedScopes,
}

/// `t` in Medium's unit, milliseconds since the Unix epoch, saturating (a
/// clock before 1970 or past year 292 million still compares sensibly).
pub fn system_time_to_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// Medium's milliseconds since the Unix epoch as a wall-clock time; `None`
/// when this platform's clock cannot represent it.
pub fn ms_to_system_time(ms: i64) -> Option<SystemTime> {
    let magnitude = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    }
}

/// The token response as it arrives. `scope` is kept as strings so unknown
/// scopes survive; the generated type would reject them.
#[derive(Deserialize)]
pub(crate) struct WireToken {
    #[serde(default)]
    pub(crate) token_type: Option<String>,
    #[serde(default)]
    pub(crate) access_token: Option<String>,
    #[serde(default)]
    pub(crate) refresh_token: Option<String>,
    #[serde(default)]
    pub(crate) scope: ScopeField,
    #[serde(default)]
    pub(crate) expires_at: Option<i64>,
}

/// Medium sends an array; a comma-separated string is accepted too, as other
/// OAuth servers send it that way.
#[derive(Deserialize, Default)]
#[serde(untagged)]
pub(crate) enum ScopeField {
    #[default]
    None,
    List(Vec<String>),
    Text(String),
}

impl WireToken {
    pub(crate) fn into_token(self) -> Result<Token, Error> {
        if let Some(kind) = &self.token_type
            && !kind.eq_ignore_ascii_case("bearer")
        {
            // The server's text is not quoted: it may echo the request.
            return Err(Error::MalformedBody("token_type is not Bearer".into()));
        }
        let access_token = self
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::MalformedBody("no access_token".into()))?;
        // A token that cannot travel in an `Authorization` header could never
        // be used; refusing it now lets a refresh replace it.
        if !access_token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::MalformedBody(
                "access_token has characters a header cannot carry".into(),
            ));
        }
        let expires_at = match self.expires_at {
            None => None,
            Some(ms) => Some(
                ms_to_system_time(ms)
                    .ok_or_else(|| Error::MalformedBody("expires_at is out of range".into()))?,
            ),
        };
        let scopes = match self.scope {
            ScopeField::None => GrantedScopes::default(),
            ScopeField::List(names) => GrantedScopes::from_names(names),
            ScopeField::Text(text) => GrantedScopes::from_names(text.split(',').map(str::trim)),
        };
        Ok(Token {
            access_token: AccessToken::new(access_token),
            refresh_token: self
                .refresh_token
                .filter(|t| !t.is_empty())
                .map(RefreshToken::new),
            expires_at,
            scopes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scopes;

    #[test]
    fn times_before_1970_are_negative_milliseconds_and_come_back() {
        let before = UNIX_EPOCH - Duration::from_millis(1_500);
        assert_eq!(system_time_to_ms(before), -1_500);
        assert_eq!(ms_to_system_time(-1_500), Some(before));
        let after = UNIX_EPOCH + Duration::from_millis(1_500);
        assert_eq!(system_time_to_ms(after), 1_500);
    }

    #[test]
    fn debug_shows_a_token_with_its_secrets_redacted() {
        let token = Token::new(
            AccessToken::new("an-access-token-nobody-may-see"),
            Some(RefreshToken::new("a-refresh-token-nobody-may-see")),
            None,
            GrantedScopes::default(),
        );
        let shown = format!("{token:?}");
        assert!(
            shown.starts_with("Token {")
                && shown.contains("access_token: AccessToken([redacted])")
                && shown.contains("refresh_token: Some(RefreshToken([redacted]))")
                && shown.contains("expires_at: None"),
            "{shown}"
        );
        assert!(!shown.contains("nobody-may-see"), "{shown}");
    }

    #[test]
    fn parses_the_live_example() {
        let body = br#"{"token_type":"Bearer","access_token":"181d415f34379af07b2c11d144dfbe35d",
            "refresh_token":"1f5d6bd6d5a2ac8a1a0c7e0f1fb6e9b3c","scope":["basicProfile","publishPost"],
            "expires_at":1449441560773}"#;
        let token = Token::from_response_body(body).unwrap();
        assert_eq!(token.scopes().known, scopes![basicProfile, publishPost]);
        assert_eq!(
            token.expires_at(),
            Some(UNIX_EPOCH + Duration::from_millis(1_449_441_560_773))
        );
        assert!(token.refresh_token().is_some());
    }

    /// Regression: a record read back from a file kept whatever unknown
    /// scope names it held, escape sequences included, and programs print
    /// scopes; a token from the server could never carry them.
    #[test]
    fn a_record_keeps_only_unknown_scopes_that_look_like_scope_names() {
        let json = serde_json::json!({
            "access_token": "a",
            "scopes": {
                "known": [],
                "unknown": ["readMinds", "\u{1b}[2J\u{1b}]0;pwned\u{7}", "a b", "readMinds"]
            }
        });
        let record: TokenRecord = serde_json::from_value(json).unwrap();
        let token = Token::from_record(record);
        assert_eq!(token.scopes().unknown, ["readMinds"]);
        let many: Vec<String> = (0..100).map(|i| format!("scope{i}")).collect();
        let json =
            serde_json::json!({"access_token": "a", "scopes": {"known": [], "unknown": many}});
        let token = Token::from_record(serde_json::from_value(json).unwrap());
        assert_eq!(token.scopes().unknown.len(), MAX_UNKNOWN_SCOPES);
    }

    #[test]
    fn unknown_scopes_are_kept_not_fatal() {
        let body = br#"{"access_token":"a","scope":["basicProfile","readMinds","readMinds"]}"#;
        let token = Token::from_response_body(body).unwrap();
        assert_eq!(token.scopes().known, scopes![basicProfile]);
        assert_eq!(token.scopes().unknown, ["readMinds"]);
        assert_eq!(token.scopes().to_string(), "basicProfile,readMinds");
        assert!(token.scopes().require(Scope::BasicProfile).is_ok());
        assert!(matches!(
            token.scopes().require(Scope::PublishPost),
            Err(Error::MissingScope(Scope::PublishPost))
        ));
    }

    #[test]
    fn unknown_scope_names_are_kept_only_when_they_look_like_scopes() {
        let long = "a".repeat(MAX_SCOPE_NAME_BYTES + 1);
        let names = [
            "readMinds",
            "team:read",
            "x-1.y_z",
            "\u{1b}[2Jevil",
            "<script>",
            "1stScope",
            "",
            long.as_str(),
        ];
        let granted = GrantedScopes::from_names(names);
        assert_eq!(granted.unknown, ["readMinds", "team:read", "x-1.y_z"]);
        let edge = "a".repeat(MAX_SCOPE_NAME_BYTES);
        assert_eq!(GrantedScopes::from_names([&edge]).unknown, [edge]);
    }

    #[test]
    fn at_most_so_many_unknown_scope_names_are_kept() {
        let names: Vec<String> = (0..MAX_UNKNOWN_SCOPES + 10)
            .map(|i| format!("s{i}"))
            .collect();
        let granted = GrantedScopes::from_names(&names);
        assert_eq!(granted.unknown.len(), MAX_UNKNOWN_SCOPES);
        assert_eq!(granted.unknown[..], names[..MAX_UNKNOWN_SCOPES]);
    }

    #[test]
    fn scope_names_echoing_a_secret_are_forgotten() {
        let mut granted = GrantedScopes::from_names(["readMinds", "sh0rtSecret", "basicProfile"]);
        granted.forget_echoes(&["", "sh0rt"]);
        assert_eq!(granted.unknown, ["readMinds"]);
        assert!(granted.contains(Scope::BasicProfile));
    }

    #[test]
    fn a_token_type_error_does_not_quote_the_server() {
        let err = Token::from_response_body(br#"{"access_token":"a","token_type":"sh0rt-secret"}"#)
            .unwrap_err();
        assert!(!err.to_string().contains("sh0rt"), "{err}");
    }

    #[test]
    fn bodies_without_a_token_are_malformed() {
        for body in [
            &b""[..],
            b"<html>",
            b"{}",
            br#"{"access_token":""}"#,
            br#"{"access_token":"a","token_type":"mac"}"#,
            br#"{"access_token":"a\r\nX-Injected: 1"}"#,
            br#"{"access_token":"a b"}"#,
            br#"{"access_token":"a","expires_at":"soon"}"#,
            b"[1,2]",
        ] {
            assert!(
                matches!(
                    Token::from_response_body(body),
                    Err(Error::MalformedBody(_))
                ),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn malformed_messages_do_not_quote_the_body() {
        let err = Token::from_response_body(br#"{"access_token":["sekrit-value"]}"#).unwrap_err();
        assert!(!err.to_string().contains("sekrit"), "{err}");
    }

    #[test]
    fn records_round_trip() {
        let body = br#"{"access_token":"a","refresh_token":"r","scope":["uploadImage","new"],"expires_at":5}"#;
        let token = Token::from_response_body(body).unwrap();
        let json = serde_json::to_string(&token.to_record()).unwrap();
        let back = Token::from_record(serde_json::from_str(&json).unwrap());
        assert_eq!(back.access_token(), token.access_token());
        assert_eq!(back.refresh_token(), token.refresh_token());
        assert_eq!(back.expires_at(), token.expires_at());
        assert_eq!(back.scopes(), token.scopes());
    }

    #[test]
    fn expiry_with_margin() {
        let now = SystemTime::now();
        let token = Token::new(
            AccessToken::new("a"),
            None,
            Some(now + Duration::from_secs(100)),
            GrantedScopes::default(),
        );
        assert!(!token.expires_within(Duration::from_secs(99), now));
        assert!(token.expires_within(Duration::from_secs(100), now));
        assert!(token.expires_within(Duration::ZERO, now + Duration::from_secs(101)));
        let forever = Token::new(AccessToken::new("a"), None, None, GrantedScopes::default());
        assert!(!forever.expires_within(Duration::MAX, now));
    }
}
