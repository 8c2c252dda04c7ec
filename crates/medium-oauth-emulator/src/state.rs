//! What the emulator remembers: consents awaiting an answer, authorization
//! codes, grants and their tokens (each with its user), the users signed
//! in, counters, the clock and queued faults.
//!
//! Everything sits behind one mutex held for microseconds per request; the
//! emulator serves tests and development, where simple and obviously correct
//! beats lock-free.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::RngCore;

use crate::config::{ClientApp, Config, Limits};
use crate::faults::Fault;
use crate::scopes::Scopes;
use crate::users::Users;
use medium_oauth2_api::resource::types as resource;

/// Authorization codes, and consent pages, expire after 10 minutes: the
/// maximum RFC 6749 §4.1.2 recommends.
pub const CODE_TTL: Duration = Duration::from_secs(10 * 60);

/// Random bytes in codes and tokens: 128 bits, beyond guessing.
const SECRET_BYTES: usize = 16;

/// `now_ms` plus `by`, saturating: a lifetime set in code may be anything up
/// to `Duration::MAX`, and the clock may have been advanced as far.
pub(crate) fn ms_after(now_ms: i64, by: Duration) -> i64 {
    now_ms.saturating_add(i64::try_from(by.as_millis()).unwrap_or(i64::MAX))
}

/// A random value as lowercase hex, the form Medium's tokens take.
pub(crate) fn random_hex() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The emulator's clock: the wall-clock time at start, moved on by tokio's
/// clock, plus an adjustable offset. A test can expire codes and tokens
/// without waiting, and a test on paused tokio time moves the emulator's
/// time with its own.
#[derive(Debug)]
pub struct Clock {
    started_ms: i64,
    started: tokio::time::Instant,
    offset_ms: AtomicI64,
}

impl Default for Clock {
    fn default() -> Self {
        let started_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Self {
            started_ms,
            started: tokio::time::Instant::now(),
            offset_ms: AtomicI64::new(0),
        }
    }
}

impl Clock {
    /// Milliseconds since the Unix epoch, as the emulator sees it.
    pub fn now_ms(&self) -> i64 {
        let elapsed = i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.started_ms
            .saturating_add(elapsed)
            .saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves the emulator's time forward.
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        let _ = self
            .offset_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| {
                Some(o.saturating_add(by))
            });
    }
}

/// The endpoint a token request arrived at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /v1/tokens`
    Tokens,
    /// `POST /v1/tokens/refresh`
    TokensRefresh,
}

/// The `grant_type` a token request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grant {
    /// `authorization_code`
    AuthorizationCode,
    /// `refresh_token`
    RefreshToken,
    /// Missing, unknown, or a body that could not be read.
    Other,
}

/// How the emulator answered a token request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An injected fault answered it with this status (a dropped
    /// connection's is 200, but the client sees no response).
    Faulted(u16),
    /// Handled normally, with this status.
    Status(u16),
}

/// One token request, as a test reads it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenRequest {
    /// When it arrived, on tokio's clock.
    pub at: tokio::time::Instant,
    /// Where it arrived.
    pub endpoint: Endpoint,
    /// Its `grant_type`.
    pub grant: Grant,
    /// How it was answered.
    pub outcome: Outcome,
}

/// Requests remembered for [`crate::Emulator::token_request_log`]: the
/// newest, up to this many, so a long-running emulator's memory stays
/// bounded.
pub(crate) const REQUEST_LOG_ENTRIES: usize = 10_000;

/// A post the emulator created, as a test reads it back.
#[derive(Debug, Clone)]
pub struct ReceivedPost {
    /// The author's user id, from the path (always the token's user).
    pub author_id: String,
    /// The publication it was created in, or `None` for a post on the
    /// user's profile.
    pub publication_id: Option<String>,
    /// The request body as received: title, content, contentFormat, tags,
    /// publishStatus, license, canonicalUrl and notifyFollowers, each as
    /// sent (an omitted optional field is `None`, omitted tags empty).
    pub request: resource::CreatePostRequest,
    /// What the emulator answered.
    pub post: resource::Post,
}

/// An image the emulator accepted, as a test reads it back. The image's
/// bytes are not kept, only what identifies them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedImage {
    /// Hex MD5 of the bytes, as answered.
    pub md5: String,
    /// The part's content type, as sent.
    pub content_type: String,
    /// The part's filename, as sent.
    pub filename: String,
    /// The image's size in bytes.
    pub size: usize,
    /// The URL answered.
    pub url: String,
}

impl ReceivedPost {
    /// Roughly what it holds in memory: its text and its slot.
    pub(crate) fn footprint(&self) -> usize {
        let r = &self.request;
        let p = &self.post;
        let strings = |v: &[String]| v.iter().map(|t| t.len() + TEXT_SLOT_BYTES).sum::<usize>();
        std::mem::size_of::<Self>()
            + self.author_id.len()
            + self.publication_id.as_ref().map_or(0, String::len)
            + r.title.len()
            + r.content.len()
            + r.canonical_url.as_ref().map_or(0, String::len)
            + strings(&r.tags)
            + p.id.len()
            + p.title.len()
            + p.author_id.len()
            + p.url.len()
            + p.license_url.len()
            + p.canonical_url.as_ref().map_or(0, String::len)
            + p.publication_id.as_ref().map_or(0, String::len)
            + strings(&p.tags)
    }
}

impl ReceivedImage {
    /// Roughly what it holds in memory: its text and its slot.
    pub(crate) fn footprint(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.md5.len()
            + self.content_type.len()
            + self.filename.len()
            + self.url.len()
    }
}

/// What one `String` in a `Vec` costs beyond its text: its header.
const TEXT_SLOT_BYTES: usize = std::mem::size_of::<String>();

/// Records kept oldest first under a cap on their number and on their bytes;
/// a new record evicts the oldest until it fits, so a long load run keeps
/// its newest records and bounded memory.
#[derive(Debug)]
pub(crate) struct Journal<T> {
    entries: VecDeque<(usize, T)>,
    bytes: usize,
}

impl<T> Default for Journal<T> {
    fn default() -> Self {
        Self {
            entries: VecDeque::new(),
            bytes: 0,
        }
    }
}

impl<T: Clone> Journal<T> {
    /// Keeps `item`, of `footprint` bytes, forgetting the oldest records as
    /// needed to stay within `max_entries` and `max_bytes`. A record that
    /// alone exceeds `max_bytes` (or any record when `max_entries` is 0) is
    /// not kept, and nothing is evicted for it.
    pub(crate) fn push(&mut self, item: T, footprint: usize, max_entries: usize, max_bytes: usize) {
        if max_entries == 0 || footprint > max_bytes {
            return;
        }
        while self.entries.len() >= max_entries || self.bytes.saturating_add(footprint) > max_bytes
        {
            let Some((old, _)) = self.entries.pop_front() else {
                break;
            };
            self.bytes = self.bytes.saturating_sub(old);
        }
        self.bytes = self.bytes.saturating_add(footprint);
        self.entries.push_back((footprint, item));
    }

    /// The records, oldest first.
    pub(crate) fn to_vec(&self) -> Vec<T> {
        self.entries.iter().map(|(_, item)| item.clone()).collect()
    }

    /// Bytes the records hold, as their footprints count them.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

/// What the REST calls created.
#[derive(Debug, Default)]
pub(crate) struct Created {
    pub(crate) posts: Journal<ReceivedPost>,
    pub(crate) images: Journal<ReceivedImage>,
    /// The last post id issued; ids count up from a random start.
    pub(crate) last_post: u64,
}

/// Image uploads read at once: each buffers up to
/// [`Limits::image_upload_bytes`] plus framing, so four keep a burst of
/// uploads near 20 MiB with the default cap rather than 256 connections'
/// worth (1.3 GB). Reading an upload over loopback takes milliseconds, so
/// the others wait briefly. Only uploads whose token is accepted take one,
/// so clients without a token cannot hold them.
pub(crate) const IMAGE_READS_AT_ONCE: usize = 4;

/// Counters a test can read.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Requests received on the six REST calls, whatever their outcome.
    pub(crate) api_requests: AtomicU64,
    pub(crate) requests: Mutex<HashMap<(Endpoint, Grant), u64>>,
    pub(crate) log: Mutex<VecDeque<TokenRequest>>,
    pub(crate) refreshes: AtomicU64,
    /// Rotated-out refresh tokens presented again.
    pub(crate) replays: AtomicU64,
    pub(crate) exchanges: AtomicU64,
    pub(crate) not_found: AtomicU64,
}

pub(crate) struct PendingConsent {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) scopes: Scopes,
    pub(crate) state: String,
    pub(crate) expires_at_ms: i64,
}

pub(crate) struct CodeEntry {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) scopes: Scopes,
    pub(crate) expires_at_ms: i64,
    /// Set once exchanged: a second use revokes what the first one issued.
    pub(crate) grant: Option<u64>,
    /// Who approved it: the user its tokens act for. Shared with
    /// [`Users`], which the user cap bounds, so a code holds only a pointer.
    pub(crate) user: Arc<resource::User>,
}

pub(crate) struct AccessEntry {
    pub(crate) grant: u64,
    pub(crate) scopes: Scopes,
    pub(crate) expires_at_ms: i64,
    /// The user the REST calls act for.
    pub(crate) user: Arc<resource::User>,
}

pub(crate) struct RefreshEntry {
    pub(crate) grant: u64,
    pub(crate) client_id: String,
    pub(crate) scopes: Scopes,
    /// The user of the tokens it refreshes to.
    pub(crate) user: Arc<resource::User>,
}

impl PendingConsent {
    /// Roughly what it holds in memory under `key`: its text and its slot.
    fn footprint(&self, key: &str) -> usize {
        std::mem::size_of::<(String, Self)>()
            + key.len()
            + self.client_id.len()
            + self.redirect_uri.len()
            + self.state.len()
    }
}

impl CodeEntry {
    /// Roughly what it holds in memory under `key`: its text and its slot.
    fn footprint(&self, key: &str) -> usize {
        std::mem::size_of::<(String, Self)>()
            + key.len()
            + self.client_id.len()
            + self.redirect_uri.len()
    }
}

/// The grant tables. Consents and codes are only changed through methods, so
/// `pending_bytes` stays their exact total footprint.
#[derive(Default)]
pub(crate) struct Tables {
    consents: HashMap<String, PendingConsent>,
    codes: HashMap<String, CodeEntry>,
    pending_bytes: usize,
    pub(crate) access: HashMap<String, AccessEntry>,
    pub(crate) refresh: HashMap<String, RefreshEntry>,
    /// Refresh tokens rotated out, and their grants, for replay detection:
    /// the newest, up to the token limit.
    rotated: HashMap<String, u64>,
    rotated_order: VecDeque<String>,
    next_grant: u64,
}

/// Tokens issued by one exchange or refresh.
pub(crate) struct Issued {
    pub(crate) access_token: String,
    pub(crate) refresh_token: Option<String>,
    pub(crate) expires_at_ms: i64,
    pub(crate) scopes: Scopes,
}

impl Tables {
    /// Drops expired consents, codes and access tokens. Refresh tokens do not
    /// expire on Medium, so they stay until revoked or rotated.
    pub(crate) fn sweep(&mut self, now_ms: i64) {
        let mut freed = 0;
        self.consents.retain(|key, c| {
            let keep = c.expires_at_ms > now_ms;
            if !keep {
                freed += c.footprint(key);
            }
            keep
        });
        self.codes.retain(|key, c| {
            let keep = c.expires_at_ms > now_ms;
            if !keep {
                freed += c.footprint(key);
            }
            keep
        });
        self.pending_bytes = self.pending_bytes.saturating_sub(freed);
        self.access.retain(|_, t| t.expires_at_ms > now_ms);
    }

    /// Consents and codes held.
    pub(crate) fn pending(&self) -> usize {
        self.consents.len() + self.codes.len()
    }

    /// Bytes the consents and codes hold, roughly.
    pub(crate) fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Whether one more pending grant of `bytes` fits under `limits`,
    /// sweeping expired entries first when it would not.
    fn room_for_pending(&mut self, limits: &Limits, bytes: usize, now_ms: i64) -> bool {
        let fits = |t: &Self| {
            t.pending() < limits.pending_grants
                && t.pending_bytes.saturating_add(bytes) <= limits.pending_grant_bytes
        };
        if !fits(self) {
            self.sweep(now_ms);
        }
        fits(self)
    }

    /// Holds a consent under `id`, or gives it back when a cap is reached.
    pub(crate) fn insert_consent(
        &mut self,
        limits: &Limits,
        now_ms: i64,
        id: String,
        consent: PendingConsent,
    ) -> Result<(), PendingConsent> {
        let bytes = consent.footprint(&id);
        if !self.room_for_pending(limits, bytes, now_ms) {
            return Err(consent);
        }
        if let Some(old) = self.consents.insert(id.clone(), consent) {
            self.pending_bytes = self.pending_bytes.saturating_sub(old.footprint(&id));
        }
        self.pending_bytes = self.pending_bytes.saturating_add(bytes);
        Ok(())
    }

    /// Takes the consent held under `id`, if any.
    pub(crate) fn take_consent(&mut self, id: &str) -> Option<PendingConsent> {
        let (key, consent) = self.consents.remove_entry(id)?;
        self.pending_bytes = self.pending_bytes.saturating_sub(consent.footprint(&key));
        Some(consent)
    }

    /// Holds a code, or gives it back when a cap is reached.
    pub(crate) fn insert_code(
        &mut self,
        limits: &Limits,
        now_ms: i64,
        code: String,
        entry: CodeEntry,
    ) -> Result<(), CodeEntry> {
        let bytes = entry.footprint(&code);
        if !self.room_for_pending(limits, bytes, now_ms) {
            return Err(entry);
        }
        if let Some(old) = self.codes.insert(code.clone(), entry) {
            self.pending_bytes = self.pending_bytes.saturating_sub(old.footprint(&code));
        }
        self.pending_bytes = self.pending_bytes.saturating_add(bytes);
        Ok(())
    }

    /// The code `code`, if held.
    pub(crate) fn code(&self, code: &str) -> Option<&CodeEntry> {
        self.codes.get(code)
    }

    /// Records that `code` was exchanged for `grant`; its footprint is
    /// unchanged.
    pub(crate) fn mark_exchanged(&mut self, code: &str, grant: u64) {
        if let Some(entry) = self.codes.get_mut(code) {
            entry.grant = Some(grant);
        }
    }

    /// Whether an exchange's two new tokens fit under `limit`, sweeping
    /// expired access tokens first when they would not.
    pub(crate) fn room_for_tokens(&mut self, limit: usize, now_ms: i64) -> bool {
        const PER_ISSUE: usize = 2;
        if self.tokens() + PER_ISSUE > limit {
            self.sweep(now_ms);
        }
        self.tokens() + PER_ISSUE <= limit
    }

    pub(crate) fn tokens(&self) -> usize {
        self.access.len() + self.refresh.len()
    }

    pub(crate) fn new_grant(&mut self) -> u64 {
        self.next_grant += 1;
        self.next_grant
    }

    /// Removes every token of a grant (RFC 6749 §4.1.2: a reused code should
    /// revoke what it issued).
    /// Remembers that `token` of `grant` was rotated out, forgetting the
    /// oldest past `limit`.
    pub(crate) fn rotated_out(&mut self, token: String, grant: u64, limit: usize) {
        while self.rotated_order.len() >= limit.max(1) {
            if let Some(old) = self.rotated_order.pop_front() {
                self.rotated.remove(&old);
            }
        }
        self.rotated.insert(token.clone(), grant);
        self.rotated_order.push_back(token);
    }

    /// The grant of a refresh token that was rotated out.
    pub(crate) fn rotated_grant(&self, token: &str) -> Option<u64> {
        self.rotated.get(token).copied()
    }

    pub(crate) fn revoke_grant(&mut self, grant: u64) {
        self.access.retain(|_, t| t.grant != grant);
        self.refresh.retain(|_, t| t.grant != grant);
    }

    /// Issues an access token for `user`, and a refresh token when
    /// `refresh` is set.
    pub(crate) fn issue(
        &mut self,
        grant: u64,
        client_id: &str,
        scopes: Scopes,
        expires_at_ms: i64,
        refresh: bool,
        user: Arc<resource::User>,
    ) -> Issued {
        let access_token = random_hex();
        self.access.insert(
            access_token.clone(),
            AccessEntry {
                grant,
                scopes,
                expires_at_ms,
                user: user.clone(),
            },
        );
        let refresh_token = refresh.then(|| {
            let token = random_hex();
            self.refresh.insert(
                token.clone(),
                RefreshEntry {
                    grant,
                    client_id: client_id.to_owned(),
                    scopes,
                    user,
                },
            );
            token
        });
        Issued {
            access_token,
            refresh_token,
            expires_at_ms,
            scopes,
        }
    }
}

/// Shared state of one running emulator.
pub(crate) struct State {
    pub(crate) config: Config,
    pub(crate) clock: Clock,
    pub(crate) tables: Mutex<Tables>,
    pub(crate) faults: Mutex<VecDeque<Fault>>,
    pub(crate) counters: Counters,
    /// Set by a test: the API answers 401 to every token.
    pub(crate) refuse_api_tokens: AtomicBool,
    /// Posts and images the REST calls created.
    pub(crate) created: Mutex<Created>,
    /// Permits to buffer an image upload; see [`IMAGE_READS_AT_ONCE`].
    pub(crate) image_reads: tokio::sync::Semaphore,
    /// The users who signed in, and the demo user.
    pub(crate) users: Mutex<Users>,
}

impl State {
    pub(crate) fn new(config: Config) -> Self {
        Self {
            config,
            clock: Clock::default(),
            tables: Mutex::new(Tables::default()),
            faults: Mutex::new(VecDeque::new()),
            counters: Counters::default(),
            refuse_api_tokens: AtomicBool::new(false),
            created: Mutex::new(Created {
                // Ids stay 12 hex digits, like Medium's, for 2^40 posts and
                // more from any start below 2^47.
                last_post: rand::rng().next_u64() >> 17,
                ..Created::default()
            }),
            image_reads: tokio::sync::Semaphore::new(IMAGE_READS_AT_ONCE),
            users: Mutex::new(Users::default()),
        }
    }

    /// Locks the users known; poisoning is ignored as for [`State::tables`].
    pub(crate) fn users(&self) -> std::sync::MutexGuard<'_, Users> {
        self.users.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Locks what the REST calls created; poisoning is ignored as for
    /// [`State::tables`].
    pub(crate) fn created(&self) -> std::sync::MutexGuard<'_, Created> {
        self.created.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn client(&self, id: &str) -> Option<&ClientApp> {
        self.config.clients.iter().find(|c| c.id == id)
    }

    /// Locks the tables. A panic while they were held cannot leave them
    /// half-updated in a way that matters to an emulator, so poisoning is
    /// ignored rather than failing every later request.
    pub(crate) fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn requests(&self) -> std::sync::MutexGuard<'_, HashMap<(Endpoint, Grant), u64>> {
        self.counters
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a token request and remembers how it was answered.
    pub(crate) fn record_request(&self, endpoint: Endpoint, grant: Grant, outcome: Outcome) {
        *self.requests().entry((endpoint, grant)).or_default() += 1;
        let mut log = self.request_log();
        if log.len() == REQUEST_LOG_ENTRIES {
            log.pop_front();
        }
        log.push_back(TokenRequest {
            at: tokio::time::Instant::now(),
            endpoint,
            grant,
            outcome,
        });
    }

    pub(crate) fn request_log(&self) -> std::sync::MutexGuard<'_, VecDeque<TokenRequest>> {
        self.counters.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn next_fault(&self) -> Option<Fault> {
        self.faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The footprint of everything held, counted afresh.
    fn recount(t: &Tables) -> usize {
        t.consents
            .iter()
            .map(|(k, c)| c.footprint(k))
            .sum::<usize>()
            + t.codes.iter().map(|(k, c)| c.footprint(k)).sum::<usize>()
    }

    fn consent(state: &str, expires_at_ms: i64) -> PendingConsent {
        PendingConsent {
            client_id: "demo-client".into(),
            redirect_uri: "http://127.0.0.1:9/cb".into(),
            scopes: Scopes::default(),
            state: state.into(),
            expires_at_ms,
        }
    }

    fn code(expires_at_ms: i64) -> CodeEntry {
        CodeEntry {
            client_id: "demo-client".into(),
            redirect_uri: "http://127.0.0.1:9/cb".into(),
            scopes: Scopes::default(),
            expires_at_ms,
            grant: None,
            user: Arc::new(crate::demo::user()),
        }
    }

    fn received_post() -> ReceivedPost {
        ReceivedPost {
            author_id: "au".into(),
            publication_id: Some("pu".into()),
            request: resource::CreatePostRequest {
                canonical_url: Some("https://example.com/c".into()),
                content: "co".into(),
                content_format: resource::ContentFormat::Markdown,
                license: None,
                notify_followers: None,
                publish_status: None,
                tags: vec!["t1".into(), "t2".into()],
                title: "ti".into(),
            },
            post: resource::Post {
                author_id: "au".into(),
                canonical_url: Some("https://example.com/c".into()),
                id: "id".into(),
                license: resource::License::AllRightsReserved,
                license_url: "https://example.com/l".into(),
                publication_id: Some("pu".into()),
                publish_status: resource::PublishStatus::Public,
                published_at: Some(1),
                tags: vec!["t1".into(), "t2".into()],
                title: "ti".into(),
                url: "https://example.com/p".into(),
            },
        }
    }

    /// A record's footprint counts each byte of its text once, and a slot
    /// for each tag: the journal's byte cap is only as good as this count.
    #[test]
    fn a_footprint_grows_by_exactly_the_text_added() {
        type Grow<T> = (&'static str, fn(&mut T));
        let posts: [Grow<ReceivedPost>; 13] = [
            ("author_id", |p| p.author_id.push_str("xyz")),
            ("publication_id", |p| {
                p.publication_id.as_mut().unwrap().push_str("xyz");
            }),
            ("request.title", |p| p.request.title.push_str("xyz")),
            ("request.content", |p| p.request.content.push_str("xyz")),
            ("request.canonical_url", |p| {
                p.request.canonical_url.as_mut().unwrap().push_str("xyz");
            }),
            ("request.tags", |p| p.request.tags[1].push_str("xyz")),
            ("post.id", |p| p.post.id.push_str("xyz")),
            ("post.title", |p| p.post.title.push_str("xyz")),
            ("post.author_id", |p| p.post.author_id.push_str("xyz")),
            ("post.url", |p| p.post.url.push_str("xyz")),
            ("post.license_url", |p| p.post.license_url.push_str("xyz")),
            ("post.canonical_url", |p| {
                p.post.canonical_url.as_mut().unwrap().push_str("xyz");
            }),
            ("post.publication_id", |p| {
                p.post.publication_id.as_mut().unwrap().push_str("xyz");
            }),
        ];
        let base = received_post();
        for (field, grow) in posts {
            let mut grown = base.clone();
            grow(&mut grown);
            assert_eq!(grown.footprint(), base.footprint() + 3, "{field}");
        }
        let tag_lists: [fn(&mut ReceivedPost) -> &mut Vec<String>; 2] =
            [|p| &mut p.request.tags, |p| &mut p.post.tags];
        for tags in tag_lists {
            let mut grown = base.clone();
            tags(&mut grown).push("xyz".into());
            assert_eq!(
                grown.footprint(),
                base.footprint() + 3 + TEXT_SLOT_BYTES,
                "a tag more"
            );
        }

        let image = ReceivedImage {
            md5: "md".into(),
            content_type: "ct".into(),
            filename: "fn".into(),
            size: 1,
            url: "ur".into(),
        };
        let images: [Grow<ReceivedImage>; 4] = [
            ("md5", |i| i.md5.push_str("xyz")),
            ("content_type", |i| i.content_type.push_str("xyz")),
            ("filename", |i| i.filename.push_str("xyz")),
            ("url", |i| i.url.push_str("xyz")),
        ];
        for (field, grow) in images {
            let mut grown = image.clone();
            grow(&mut grown);
            assert_eq!(grown.footprint(), image.footprint() + 3, "{field}");
        }
    }

    /// Every path that adds or removes a consent or a code keeps the byte
    /// count exact: a drift either way would let the cap be passed or lock
    /// every client out for good.
    #[test]
    fn pending_bytes_stay_exact_on_every_path() {
        let limits = Limits::default();
        let mut t = Tables::default();
        let exact = |t: &Tables| assert_eq!(t.pending_bytes(), recount(t));
        assert!(
            t.insert_consent(&limits, 0, "a".into(), consent("short", 10))
                .is_ok()
        );
        exact(&t);
        // Over an existing key, with a different size.
        assert!(
            t.insert_consent(&limits, 0, "a".into(), consent(&"s".repeat(900), 10))
                .is_ok()
        );
        exact(&t);
        assert!(
            t.insert_consent(&limits, 0, "b".into(), consent("x", 20))
                .is_ok()
        );
        // Taken twice: the second take finds nothing and frees nothing.
        assert!(t.take_consent("a").is_some());
        exact(&t);
        assert!(t.take_consent("a").is_none());
        exact(&t);
        assert!(t.insert_code(&limits, 0, "c".into(), code(10)).is_ok());
        assert!(t.insert_code(&limits, 0, "c".into(), code(30)).is_ok());
        assert!(t.insert_code(&limits, 0, "d".into(), code(30)).is_ok());
        exact(&t);
        // Used, and used again (reuse revokes tokens, not the code).
        t.mark_exchanged("c", 1);
        t.revoke_grant(1);
        exact(&t);
        // A partial sweep: "b" (expires at 20) goes, the codes stay.
        t.sweep(25);
        exact(&t);
        assert_eq!(t.pending(), 2);
        // And a full one leaves nothing, counted as nothing.
        t.sweep(30);
        assert_eq!((t.pending(), t.pending_bytes()), (0, 0));
    }

    /// Filled to the byte cap, the table refuses more until what it holds
    /// expires; then the sweep gives the room back.
    #[test]
    fn a_full_table_has_room_again_once_its_entries_expire() {
        let one = consent("s", 10).footprint("k0");
        let limits = Limits {
            pending_grant_bytes: 3 * one,
            ..Limits::default()
        };
        let mut t = Tables::default();
        for i in 0..3 {
            assert!(
                t.insert_consent(&limits, 0, format!("k{i}"), consent("s", 10))
                    .is_ok()
            );
        }
        assert!(
            t.insert_consent(&limits, 5, "k3".into(), consent("s", 20))
                .is_err()
        );
        assert!(t.insert_code(&limits, 5, "k3".into(), code(20)).is_err());
        assert_eq!(t.pending_bytes(), 3 * one);
        assert!(t.insert_code(&limits, 10, "k3".into(), code(20)).is_ok());
        assert_eq!(t.pending(), 1);
        assert_eq!(t.pending_bytes(), recount(&t));
    }

    #[test]
    fn a_journal_evicts_the_oldest_to_stay_within_both_caps() {
        let mut j = Journal::default();
        for i in 0..5 {
            j.push(i, 10, 3, 100);
        }
        assert_eq!(j.to_vec(), [2, 3, 4]);
        assert_eq!(j.bytes(), 30);
        // A big record evicts as many as it needs.
        j.push(9, 85, 3, 100);
        assert_eq!(j.to_vec(), [4, 9]);
        assert_eq!(j.bytes(), 95);
        // One over the byte cap alone is not kept, and evicts nothing.
        j.push(10, 101, 3, 100);
        assert_eq!(j.to_vec(), [4, 9]);
        j.push(11, 1, 0, 100);
        assert_eq!(j.to_vec(), [4, 9]);

        // Both caps are inclusive: records filling the byte cap exactly are
        // all kept, and so is one record as big as the cap.
        let mut j = Journal::default();
        j.push(1, 60, 3, 100);
        j.push(2, 40, 3, 100);
        assert_eq!(j.to_vec(), [1, 2]);
        assert_eq!(j.bytes(), 100);
        j.push(3, 100, 3, 100);
        assert_eq!(j.to_vec(), [3]);
        assert_eq!(j.bytes(), 100);
    }

    /// A load run's worth of records leaves the newest within the caps.
    #[test]
    fn a_hundred_thousand_records_stay_within_the_caps() {
        let mut j = Journal::default();
        for i in 0..100_000u32 {
            j.push(i, 100 + (i as usize % 7), 1_000, 50_000);
        }
        let kept = j.to_vec();
        assert!(kept.len() <= 1_000 && j.bytes() <= 50_000);
        assert_eq!(kept.last(), Some(&99_999));
        assert!(kept.windows(2).all(|w| w[0] + 1 == w[1]));
    }
}
