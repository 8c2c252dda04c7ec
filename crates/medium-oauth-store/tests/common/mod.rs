//! What the store's test files share: a clock the test drives, the tests'
//! key, and raw access to the database, as anyone with access has.

#![allow(dead_code)] // each test file uses its own part

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use medium_oauth_emulator::Emulator;
use medium_oauth_store::EncryptionKey;

/// A wall clock the test moves, with the emulator's.
#[derive(Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn at(emu: &Emulator) -> Self {
        Self::at_ms(emu.now_ms())
    }

    /// A clock of its own, at `ms` since the epoch.
    pub fn at_ms(ms: i64) -> Self {
        Self(Arc::new(AtomicI64::new(ms)))
    }

    /// Moves this clock and the emulator's together.
    pub fn advance(&self, emu: &Emulator, by: Duration) {
        self.0.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
        emu.advance_clock(by);
    }

    pub fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl medium_oauth::Clock for ManualClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.now_ms().max(0) as u64)
    }
}

pub fn key(id: &str, byte: u8) -> EncryptionKey {
    EncryptionKey::new(id, [byte; 32]).expect("a key")
}

/// A connection of its own to the store's database, as anyone with
/// database access has, bypassing the crate.
pub async fn raw_pool(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    let url = url
        .replace("sqlite:", "sqlite://")
        .replace("sqlite:////", "sqlite:///");
    sqlx::AnyPool::connect(&url)
        .await
        .expect("a raw connection")
}

pub async fn raw_exec(url: &str, sql: &str) {
    let pool = raw_pool(url).await;
    sqlx::raw_sql(sql)
        .execute(&pool)
        .await
        .expect("the statement");
}

/// Makes every token write to a SQLite database fail, as a database that
/// is restarting or out of disk does; `false` lifts it.
pub async fn fail_writes(url: &str, fail: bool) {
    let sql = if fail {
        "CREATE TRIGGER fail_writes BEFORE UPDATE OF sealed ON medium_oauth_accounts \
         BEGIN SELECT RAISE(ABORT, 'injected: database unavailable'); END"
    } else {
        "DROP TRIGGER fail_writes"
    };
    raw_exec(url, sql).await;
}
