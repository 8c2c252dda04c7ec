//! Tokens at rest: sealed with XChaCha20-Poly1305 under the application's
//! keys, each row naming the key that sealed it so keys can rotate.

use std::collections::HashMap;
use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretBox};

use crate::error::printable;
use crate::{AccountId, StoreError};

/// Bytes of an XChaCha20 nonce: 192 bits, large enough to draw at random for
/// every write without a birthday collision in any table's lifetime.
const NONCE_BYTES: usize = 24;

/// Bytes of a key: XChaCha20-Poly1305 takes 256 bits.
pub const KEY_BYTES: usize = 32;

/// Longest key id, in bytes: it is stored with every row.
pub const MAX_KEY_ID_BYTES: usize = 64;

/// A 256-bit key and the id stored with each row it seals.
pub struct EncryptionKey {
    id: String,
    key: SecretBox<[u8; KEY_BYTES]>,
}

impl EncryptionKey {
    /// `bytes` under the name `id` (for example `"2026-12"`): printable
    /// ASCII, 1 to [`MAX_KEY_ID_BYTES`] bytes.
    pub fn new(id: impl Into<String>, bytes: [u8; KEY_BYTES]) -> Result<Self, StoreError> {
        let id = id.into();
        let printable = id.bytes().all(|b| b.is_ascii_graphic());
        if id.is_empty() || id.len() > MAX_KEY_ID_BYTES || !printable {
            return Err(StoreError::InvalidKeyId);
        }
        Ok(Self {
            id,
            key: SecretBox::new(Box::new(bytes)),
        })
    }

    /// A new random key named `id`, for tests and first set-ups; keep its
    /// bytes ([`EncryptionKey::expose_bytes`]) where the application keeps
    /// its secrets.
    pub fn generate(id: impl Into<String>) -> Result<Self, StoreError> {
        let mut bytes = [0u8; KEY_BYTES];
        getrandom::getrandom(&mut bytes).map_err(|e| StoreError::Randomness(e.to_string()))?;
        Self::new(id, bytes)
    }

    /// The key's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key's bytes, to be kept in a secret manager.
    pub fn expose_bytes(&self) -> &[u8; KEY_BYTES] {
        self.key.expose_secret()
    }
}

/// A copy for a second handle (two databases, a migration): the copy's
/// bytes live in a box of their own, zeroized on drop like the first.
impl Clone for EncryptionKey {
    fn clone(&self) -> Self {
        Self {
            id: self.id.clone(),
            key: SecretBox::new(Box::new(*self.key.expose_secret())),
        }
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptionKey({}, [redacted])", self.id)
    }
}

/// The keys a store may read with, and the one it writes with.
///
/// Every write seals with the current key, so rows sealed under an older
/// key are re-encrypted on their next write; keep an old key in the ring
/// until no row names it. Cloning shares nothing mutable: a service opening
/// two databases clones the ring rather than keeping raw key bytes around.
#[derive(Clone)]
pub struct Keyring {
    current: String,
    keys: HashMap<String, XChaCha20Poly1305>,
}

impl Keyring {
    /// A ring that writes with `current`.
    pub fn new(current: EncryptionKey) -> Self {
        let mut keys = HashMap::new();
        let id = current.id.clone();
        keys.insert(id.clone(), cipher(&current));
        Self { current: id, keys }
    }

    /// Also reads rows sealed with `old`. A key whose id is already in the
    /// ring replaces nothing: the first key given under an id stands.
    pub fn with_old_key(mut self, old: EncryptionKey) -> Self {
        self.keys
            .entry(old.id.clone())
            .or_insert_with(|| cipher(&old));
        self
    }

    /// The id of the key new rows are sealed with.
    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    /// Seals `plaintext` for `account`'s row under the current key: the
    /// key id and the nonce-prefixed ciphertext.
    pub(crate) fn seal(
        &self,
        client_id: &str,
        account: &AccountId,
        plaintext: &[u8],
    ) -> Result<(String, Vec<u8>), StoreError> {
        self.seal_as(ACCOUNT_ROWS, client_id, account.as_str(), plaintext)
    }

    /// Opens `account`'s row sealed under `key_id`.
    pub(crate) fn open(
        &self,
        client_id: &str,
        account: &AccountId,
        key_id: &str,
        sealed: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        self.open_as(ACCOUNT_ROWS, client_id, account.as_str(), key_id, sealed)
            .map_err(|unopened| {
                let key_id = printable(key_id, MAX_KEY_ID_BYTES);
                let account = account.clone();
                match unopened {
                    Unopened::MissingKey => StoreError::MissingKey { account, key_id },
                    Unopened::WrongKey => StoreError::WrongKey { account, key_id },
                }
            })
    }

    /// Seals a pending login's `plaintext`, for the row found by `digest`.
    pub(crate) fn seal_login(
        &self,
        client_id: &str,
        digest: &str,
        plaintext: &[u8],
    ) -> Result<(String, Vec<u8>), StoreError> {
        self.seal_as(LOGIN_ROWS, client_id, digest, plaintext)
    }

    /// Opens a pending login's row.
    pub(crate) fn open_login(
        &self,
        client_id: &str,
        digest: &str,
        key_id: &str,
        sealed: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        self.open_as(LOGIN_ROWS, client_id, digest, key_id, sealed)
            .map_err(|unopened| {
                let key_id = printable(key_id, MAX_KEY_ID_BYTES);
                StoreError::LoginUnreadable(match unopened {
                    Unopened::MissingKey => {
                        format!("sealed with key {key_id}, which the keyring lacks")
                    }
                    Unopened::WrongKey => {
                        format!("does not open under key {key_id}: wrong key or altered row")
                    }
                })
            })
    }

    fn seal_as(
        &self,
        table: &[u8],
        client_id: &str,
        row: &str,
        plaintext: &[u8],
    ) -> Result<(String, Vec<u8>), StoreError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::getrandom(&mut nonce).map_err(|e| StoreError::Randomness(e.to_string()))?;
        let aad = associated_data(table, client_id, row, &self.current);
        let cipher = &self.keys[&self.current];
        let sealed = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| StoreError::Randomness("encryption failed".into()))?;
        let mut out = Vec::with_capacity(NONCE_BYTES + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok((self.current.clone(), out))
    }

    fn open_as(
        &self,
        table: &[u8],
        client_id: &str,
        row: &str,
        key_id: &str,
        sealed: &[u8],
    ) -> Result<Vec<u8>, Unopened> {
        let cipher = self.keys.get(key_id).ok_or(Unopened::MissingKey)?;
        let (nonce, ciphertext) = sealed
            .split_first_chunk::<NONCE_BYTES>()
            .ok_or(Unopened::WrongKey)?;
        let aad = associated_data(table, client_id, row, key_id);
        cipher
            .decrypt(
                &XNonce::from(*nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| Unopened::WrongKey)
    }
}

/// Why a sealed value did not open.
enum Unopened {
    MissingKey,
    WrongKey,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        ids.sort_unstable();
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("keys", &ids)
            .finish()
    }
}

fn cipher(key: &EncryptionKey) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(&(*key.key.expose_secret()).into())
}

/// The associated data's prefix for account rows; fixed by the rows already
/// written.
const ACCOUNT_ROWS: &[u8] = b"medium-oauth-store/v1";

/// The prefix for pending logins: a login's sealed state copied into an
/// account row (or back) does not open.
const LOGIN_ROWS: &[u8] = b"medium-oauth-store/login/v1";

/// Binds a ciphertext to its table, row and key, so a sealed value copied
/// into another row (or relabelled with another key id) does not open.
/// Each part is length-prefixed, so no two rows share associated data.
fn associated_data(table: &[u8], client_id: &str, row: &str, key_id: &str) -> Vec<u8> {
    let mut aad = table.to_vec();
    for part in [client_id, row, key_id] {
        // Ids are capped far below 4 GiB, so the length fits.
        aad.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(id: &str) -> AccountId {
        AccountId::new(id).unwrap()
    }

    #[test]
    fn a_sealed_row_opens_only_for_its_own_account_client_and_key() {
        let ring = Keyring::new(EncryptionKey::new("k1", [7; KEY_BYTES]).unwrap());
        let (key_id, sealed) = ring.seal("client", &account("alice"), b"secret").unwrap();
        assert_eq!(key_id, "k1");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            ring.open("client", &account("alice"), "k1", &sealed)
                .unwrap(),
            b"secret"
        );
        for (client, who) in [("client", "bob"), ("other", "alice")] {
            let err = ring.open(client, &account(who), "k1", &sealed).unwrap_err();
            assert!(matches!(err, StoreError::WrongKey { .. }), "{err:?}");
        }
    }

    #[test]
    fn clones_of_a_key_and_a_ring_open_what_the_originals_sealed() {
        let key = EncryptionKey::new("k1", [7; KEY_BYTES]).unwrap();
        let copy = key.clone();
        assert_eq!(copy.id(), "k1");
        assert_eq!(copy.expose_bytes(), key.expose_bytes());
        let ring =
            Keyring::new(key).with_old_key(EncryptionKey::new("k0", [3; KEY_BYTES]).unwrap());
        let (key_id, sealed) = ring.seal("client", &account("alice"), b"secret").unwrap();
        let twin = ring.clone();
        assert_eq!(twin.current_key_id(), "k1");
        assert_eq!(
            twin.open("client", &account("alice"), &key_id, &sealed)
                .unwrap(),
            b"secret"
        );
        let old = Keyring::new(EncryptionKey::new("k0", [3; KEY_BYTES]).unwrap());
        let (_, sealed_old) = old.seal("client", &account("bob"), b"older").unwrap();
        assert_eq!(
            twin.open("client", &account("bob"), "k0", &sealed_old)
                .unwrap(),
            b"older",
            "the clone keeps the old keys"
        );
        assert_eq!(format!("{copy:?}"), "EncryptionKey(k1, [redacted])");
    }

    #[test]
    fn a_login_and_an_account_row_never_open_as_each_other() {
        let ring = Keyring::new(EncryptionKey::new("k1", [7; KEY_BYTES]).unwrap());
        let (_, login) = ring.seal_login("c", "d1", b"state").unwrap();
        assert_eq!(ring.open_login("c", "d1", "k1", &login).unwrap(), b"state");
        for (client, digest, key) in [("c", "d2", "k1"), ("x", "d1", "k1"), ("c", "d1", "k9")] {
            let err = ring.open_login(client, digest, key, &login).unwrap_err();
            assert!(matches!(err, StoreError::LoginUnreadable(_)), "{err:?}");
        }
        let err = ring.open("c", &account("d1"), "k1", &login).unwrap_err();
        assert!(matches!(err, StoreError::WrongKey { .. }), "{err:?}");
        let (_, row) = ring.seal("c", &account("d1"), b"token").unwrap();
        assert!(ring.open_login("c", "d1", "k1", &row).is_err());
        let hostile = "k\u{1b}[2J\n";
        let err = ring.open_login("c", "d1", hostile, &login).unwrap_err();
        assert!(!err.to_string().contains('\u{1b}'), "{err}");
        let err = ring.open("c", &account("d1"), hostile, &row).unwrap_err();
        assert!(!err.to_string().contains('\u{1b}'), "{err}");
    }

    #[test]
    fn rotation_reads_old_rows_and_writes_with_the_new_key() {
        let old = Keyring::new(EncryptionKey::new("old", [1; KEY_BYTES]).unwrap());
        let (_, sealed) = old.seal("c", &account("a"), b"t").unwrap();
        let ring = Keyring::new(EncryptionKey::new("new", [2; KEY_BYTES]).unwrap())
            .with_old_key(EncryptionKey::new("old", [1; KEY_BYTES]).unwrap());
        assert_eq!(ring.open("c", &account("a"), "old", &sealed).unwrap(), b"t");
        assert_eq!(ring.seal("c", &account("a"), b"t").unwrap().0, "new");
        let without_old = Keyring::new(EncryptionKey::new("new", [2; KEY_BYTES]).unwrap());
        let err = without_old
            .open("c", &account("a"), "old", &sealed)
            .unwrap_err();
        assert!(matches!(err, StoreError::MissingKey { .. }), "{err:?}");
    }

    #[test]
    fn a_wrong_key_under_the_right_id_and_a_short_row_are_refused() {
        let ring = Keyring::new(EncryptionKey::new("k", [1; KEY_BYTES]).unwrap());
        let (_, sealed) = ring.seal("c", &account("a"), b"t").unwrap();
        let impostor = Keyring::new(EncryptionKey::new("k", [9; KEY_BYTES]).unwrap());
        for row in [&sealed[..], &sealed[..NONCE_BYTES - 1], &[]] {
            let err = impostor.open("c", &account("a"), "k", row).unwrap_err();
            assert!(matches!(err, StoreError::WrongKey { .. }), "{err:?}");
        }
    }

    #[test]
    fn keys_keep_their_id_and_bytes_and_print_only_ids() {
        let key = EncryptionKey::new("2026-12", [0xAB; KEY_BYTES]).unwrap();
        assert_eq!(key.id(), "2026-12");
        assert_eq!(key.expose_bytes(), &[0xAB; KEY_BYTES]);
        assert_eq!(format!("{key:?}"), "EncryptionKey(2026-12, [redacted])");
        let generated = EncryptionKey::generate("g").unwrap();
        assert_ne!(
            generated.expose_bytes(),
            EncryptionKey::generate("g").unwrap().expose_bytes()
        );
        let ring =
            Keyring::new(key).with_old_key(EncryptionKey::new("2025", [1; KEY_BYTES]).unwrap());
        assert_eq!(ring.current_key_id(), "2026-12");
        assert_eq!(
            format!("{ring:?}"),
            r#"Keyring { current: "2026-12", keys: ["2025", "2026-12"] }"#
        );
    }

    #[test]
    fn key_ids_are_printable_and_bounded_and_keys_never_print() {
        assert!(EncryptionKey::new("", [0; KEY_BYTES]).is_err());
        assert!(EncryptionKey::new("a b", [0; KEY_BYTES]).is_err());
        assert!(EncryptionKey::new("x".repeat(MAX_KEY_ID_BYTES + 1), [0; KEY_BYTES]).is_err());
        assert!(EncryptionKey::new("x".repeat(MAX_KEY_ID_BYTES), [0; KEY_BYTES]).is_ok());
        let key = EncryptionKey::new("k", [0xAB; KEY_BYTES]).unwrap();
        let printed = format!("{key:?}");
        let printed = format!("{printed} {:?}", Keyring::new(key));
        assert!(!printed.to_lowercase().contains("ab, "), "{printed}");
        assert!(!printed.contains("171"), "{printed}");
    }
}
