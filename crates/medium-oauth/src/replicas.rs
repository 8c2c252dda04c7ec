//! The hot path's copy of the current token: one copy per core, and a
//! per-thread memo of which copy is this thread's, so a cached call costs
//! one uncontended reference-count bump.
//!
//! Two costs are avoided, both measured by `cargo bench -p
//! medium-oauth-bench` against baselines in the same run:
//! - An `Arc`'s count is one cache line. Threads cloning the same `Arc` pass
//!   that line between cores on every call, several times the cost of an
//!   uncontended clone. So each thread clones its own copy.
//! - Reading an `ArcSwap` safely costs two more atomic read-modify-writes
//!   (arc-swap's debt slot) than the clone itself. So a thread remembers a
//!   weak reference to its copy and the generation it belongs to; upgrading
//!   that weak reference is the count bump, and it fails once the copy is
//!   dropped.
//!
//! The copies belong to the source: they are dropped, and their secrets
//! zeroized, when it replaces the token or is dropped. A thread's memo is a
//! weak reference and keeps no token alive.

use std::cell::RefCell;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use arc_swap::ArcSwapOption;

use crate::Token;

/// Most copies of one token: past this many cores, threads share copies
/// (thread `n` and thread `n + 64` take the same one).
const MAX_COPIES: usize = 64;

/// The current token, copied once per core (a power of two, at most
/// [`MAX_COPIES`]).
pub(crate) struct Replicas {
    /// Tells threads' memos apart; never reused within a process.
    id: u64,
    /// Bumped after every new set of copies, so a memo of an older set is
    /// not used even while a caller keeps that copy alive.
    generation: AtomicU64,
    copies: ArcSwapOption<Vec<Arc<Token>>>,
    /// How many copies each token gets.
    count: usize,
}

/// Source ids; 0 marks an empty memo.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Copy numbers, handed out round-robin so the threads of a runtime,
/// created together, take different copies.
static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

/// A thread's memo of its copy of one source's token.
struct Memo {
    /// Which copy is this thread's (reduced per source).
    copy: usize,
    source: u64,
    generation: u64,
    token: Weak<Token>,
}

thread_local! {
    static MEMO: RefCell<Memo> = const {
        RefCell::new(Memo {
            copy: usize::MAX,
            source: 0,
            generation: 0,
            token: Weak::new(),
        })
    };
}

impl Replicas {
    /// No token yet.
    pub(crate) fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            generation: AtomicU64::new(0),
            copies: ArcSwapOption::empty(),
            count: cores.next_power_of_two().min(MAX_COPIES),
        }
    }

    /// Makes `token` current: the first copy is `token` itself, one more per
    /// further core.
    pub(crate) fn store(&self, token: &Arc<Token>) {
        let copies = (0..self.count)
            .map(|i| {
                if i == 0 {
                    token.clone()
                } else {
                    Arc::new(Token::clone(token))
                }
            })
            .collect();
        self.copies.store(Some(Arc::new(copies)));
        // After the store: a thread that sees the new generation finds the
        // new copies.
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The calling thread's copy of the current token; `None` before the
    /// first [`store`](Self::store).
    #[inline]
    pub(crate) fn load(&self) -> Option<Arc<Token>> {
        let generation = self.generation.load(Ordering::Acquire);
        let memo = MEMO.try_with(|memo| {
            let memo = memo.borrow();
            if memo.source == self.id && memo.generation == generation {
                memo.token.upgrade()
            } else {
                None
            }
        });
        match memo {
            Ok(Some(token)) => Some(token),
            _ => self.load_and_remember(generation),
        }
    }

    /// Reads this thread's copy from the shared set, and remembers it.
    #[inline(never)]
    fn load_and_remember(&self, generation: u64) -> Option<Arc<Token>> {
        // A thread being torn down has no memo: it reads the set each time.
        let copy = MEMO
            .try_with(|memo| {
                let mut memo = memo.borrow_mut();
                if memo.copy == usize::MAX {
                    memo.copy = NEXT_THREAD.fetch_add(1, Ordering::Relaxed) % MAX_COPIES;
                }
                memo.copy
            })
            .unwrap_or(0);
        let copies = self.copies.load();
        let copies = copies.as_ref()?;
        // The count is a power of two dividing MAX_COPIES, so this spreads
        // the round-robin numbers evenly.
        let token = copies[copy & (copies.len() - 1)].clone();
        // `generation` was read before the copies: if a newer set was stored
        // in between, this memo is one generation behind and is refreshed on
        // the next call, never the other way round.
        let _ = MEMO.try_with(|memo| {
            let mut memo = memo.borrow_mut();
            memo.source = self.id;
            memo.generation = generation;
            memo.token = Arc::downgrade(&token);
        });
        Some(token)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::{AccessToken, GrantedScopes};

    fn token(value: &str) -> Arc<Token> {
        Arc::new(Token::new(
            AccessToken::new(value),
            None,
            None,
            GrantedScopes::default(),
        ))
    }

    fn address(token: &Arc<Token>) -> usize {
        Arc::as_ptr(token) as usize
    }

    #[test]
    fn empty_until_stored_then_every_thread_sees_the_newest() {
        let replicas = Replicas::new();
        assert!(replicas.load().is_none());
        replicas.store(&token("first"));
        // This thread remembers its copy of "first" ...
        assert_eq!(
            replicas.load().unwrap().access_token().expose_secret(),
            "first"
        );
        replicas.store(&token("second"));
        // ... and must not serve it after "second" arrives, on any thread.
        assert_eq!(
            replicas.load().unwrap().access_token().expose_secret(),
            "second"
        );
        std::thread::scope(|s| {
            for _ in 0..2 * MAX_COPIES {
                s.spawn(|| {
                    let seen = replicas.load().expect("stored");
                    assert_eq!(seen.access_token().expose_secret(), "second");
                });
            }
        });
    }

    #[test]
    fn a_kept_old_copy_is_not_served_after_a_new_token() {
        let replicas = Replicas::new();
        replicas.store(&token("old"));
        let kept = replicas.load().unwrap();
        replicas.store(&token("new"));
        // `kept` keeps the old copy alive, so only the generation tells
        // this thread's memo is out of date.
        assert_eq!(
            replicas.load().unwrap().access_token().expose_secret(),
            "new"
        );
        drop(kept);
    }

    #[test]
    fn each_copy_is_distinct_and_each_thread_keeps_to_its_own() {
        let replicas = Replicas::new();
        let stored = token("spread");
        replicas.store(&stored);
        let copies: Vec<usize> = replicas
            .copies
            .load_full()
            .unwrap()
            .iter()
            .map(address)
            .collect();
        assert!(copies.len().is_power_of_two() && copies.len() <= MAX_COPIES);
        assert_eq!(copies[0], address(&stored));
        let distinct: HashSet<_> = copies.iter().collect();
        assert_eq!(distinct.len(), copies.len(), "two copies share one Arc");

        let seen: Vec<(usize, usize, usize)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2 * copies.len())
                .map(|_| {
                    s.spawn(|| {
                        let first = address(&replicas.load().unwrap());
                        let again = address(&replicas.load().unwrap());
                        let copy = MEMO.with(|m| m.borrow().copy) & (copies.len() - 1);
                        (copy, first, again)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (copy, first, again) in seen {
            assert_eq!(first, copies[copy], "a thread read another thread's copy");
            assert_eq!(again, first, "a thread's memo gave a different copy");
        }
    }

    #[test]
    fn copies_keep_their_counts_in_lines_of_their_own() {
        // An `Arc`'s counts sit just before its value; a value aligned to
        // 128 bytes leaves them a line pair no other allocation shares.
        let replicas = Replicas::new();
        replicas.store(&token("aligned"));
        for copy in replicas.copies.load_full().unwrap().iter() {
            assert_eq!(address(copy) % 128, 0);
        }
    }

    #[test]
    fn memos_of_two_sources_do_not_mix() {
        let a = Replicas::new();
        let b = Replicas::new();
        a.store(&token("a"));
        b.store(&token("b"));
        for _ in 0..3 {
            assert_eq!(a.load().unwrap().access_token().expose_secret(), "a");
            assert_eq!(b.load().unwrap().access_token().expose_secret(), "b");
        }
    }

    #[test]
    fn a_memo_keeps_no_token_alive() {
        let replicas = Replicas::new();
        let stored = token("dropped with the source");
        let weak = Arc::downgrade(&stored);
        replicas.store(&stored);
        drop(stored);
        drop(replicas.load());
        drop(replicas);
        assert!(weak.upgrade().is_none(), "the thread's memo kept the token");
    }
}
