//! The keyspace: byte-string keys to byte-string values, with expiry and a scan order.
//!
//! Nothing here knows about the protocol; [`super::commands`] turns requests into calls on a
//! [`Store`]. Two things need more than a hash map:
//!
//! # Expiry
//!
//! A key may carry a deadline (SET … EX, EXPIRE). The deadlines are kept in an ordered set,
//! soonest first, and [`Store::expire_due`] (run before every command) removes the keys whose
//! time has come. So a command never sees an expired key, and the check costs one comparison
//! when nothing is due (none at all when no key has a deadline). Deadlines are `Instant`s,
//! from the monotonic clock: setting the wall clock back does not make keys live longer. An
//! idle server frees expired keys' memory at its next command.
//!
//! # The scan order
//!
//! SCAN promises that a key present for the whole scan is returned, however the keyspace
//! changes between calls. A hash map's order changes when it grows, so the cursor cannot be a
//! position in it. Instead each key gets a sequence number when it is created, and an ordered
//! map from numbers to keys is the order SCAN walks; the cursor is the number to resume from.
//! A key that stays keeps its number (overwriting a value does not renumber it), so it is
//! found exactly once; keys created during a scan get higher numbers and may be found too.
//! The key's bytes are shared (`Rc<[u8]>`) between the two maps, not copied.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;
use std::time::Instant;

/// A value and what the keyspace keeps about it.
struct Entry {
    value: Vec<u8>,
    /// Its place in the scan order.
    seq: u64,
    /// When it expires, if it does.
    deadline: Option<Instant>,
}

/// What a write does to the key's time to live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ttl {
    /// Remove it (SET, GETSET, MSET: a new value starts without one).
    Clear,
    /// Leave it as it was (SET … KEEPTTL).
    Keep,
    /// Expire at this instant.
    At(Instant),
}

/// The data.
#[derive(Default)]
pub struct Store {
    map: HashMap<Rc<[u8]>, Entry>,
    /// Every key by its sequence number: the order SCAN walks.
    order: BTreeMap<u64, Rc<[u8]>>,
    next_seq: u64,
    /// (deadline, sequence number) of every key that has a deadline, soonest first.
    deadlines: BTreeSet<(Instant, u64)>,
}

impl Store {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// How many keys have a deadline.
    pub fn volatile_len(&self) -> usize {
        self.deadlines.len()
    }

    /// Remove every key whose deadline has passed.
    #[inline]
    pub fn expire_due(&mut self) {
        if self.deadlines.is_empty() {
            return;
        }
        self.expire_due_now();
    }

    fn expire_due_now(&mut self) {
        let Some(&(first, _)) = self.deadlines.first() else {
            return;
        };
        let now = Instant::now();
        if first > now {
            return;
        }
        while let Some(&(deadline, seq)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(key) = self.order.remove(&seq) {
                self.map.remove(&key);
            }
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.map.get(key).map(|e| e.value.as_slice())
    }

    /// The value of `key`, to change in place; its deadline stays (INCR, APPEND).
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Vec<u8>> {
        self.map.get_mut(key).map(|e| &mut e.value)
    }

    /// True if `key` exists.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.map.contains_key(key)
    }

    /// Set `key` to `value`, with `ttl` deciding its deadline.
    pub fn set(&mut self, key: &[u8], value: &[u8], ttl: Ttl) {
        if let Some(entry) = self.map.get_mut(key) {
            // Reuse the allocation: overwriting a key is the common case.
            entry.value.clear();
            entry.value.extend_from_slice(value);
            let seq = entry.seq;
            match ttl {
                Ttl::Keep => {}
                Ttl::Clear => Self::replace_deadline(&mut self.deadlines, entry, seq, None),
                Ttl::At(at) => Self::replace_deadline(&mut self.deadlines, entry, seq, Some(at)),
            }
            return;
        }
        self.next_seq += 1;
        let seq = self.next_seq;
        let key: Rc<[u8]> = Rc::from(key);
        let deadline = match ttl {
            Ttl::At(at) => Some(at),
            Ttl::Clear | Ttl::Keep => None,
        };
        if let Some(at) = deadline {
            self.deadlines.insert((at, seq));
        }
        self.order.insert(seq, Rc::clone(&key));
        self.map.insert(
            key,
            Entry {
                value: value.to_vec(),
                seq,
                deadline,
            },
        );
    }

    /// Remove `key`; true if it existed.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        let Some(entry) = self.map.remove(key) else {
            return false;
        };
        self.order.remove(&entry.seq);
        if let Some(at) = entry.deadline {
            self.deadlines.remove(&(at, entry.seq));
        }
        true
    }

    /// Remove every key.
    pub fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
        self.deadlines.clear();
    }

    /// The deadline of `key`: None if there is no such key, Some(None) if it has none.
    pub fn deadline(&self, key: &[u8]) -> Option<Option<Instant>> {
        self.map.get(key).map(|e| e.deadline)
    }

    /// Give `key` a new deadline, or none; false if there is no such key.
    pub fn set_deadline(&mut self, key: &[u8], deadline: Option<Instant>) -> bool {
        let Some(entry) = self.map.get_mut(key) else {
            return false;
        };
        let seq = entry.seq;
        Self::replace_deadline(&mut self.deadlines, entry, seq, deadline);
        true
    }

    fn replace_deadline(
        deadlines: &mut BTreeSet<(Instant, u64)>,
        entry: &mut Entry,
        seq: u64,
        deadline: Option<Instant>,
    ) {
        if entry.deadline == deadline {
            return;
        }
        if let Some(old) = entry.deadline {
            deadlines.remove(&(old, seq));
        }
        if let Some(new) = deadline {
            deadlines.insert((new, seq));
        }
        entry.deadline = deadline;
    }

    /// Every key, in scan order.
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.order.values().map(|k| &k[..])
    }

    /// One step of a scan: up to `count` keys from `cursor` on (0 starts a scan), and the
    /// cursor to continue from, 0 when the scan is complete.
    pub fn scan(&self, cursor: u64, count: usize) -> (u64, Vec<&[u8]>) {
        let mut keys = Vec::with_capacity(count.min(1024));
        let mut walk = self.order.range(cursor..);
        for (_, key) in walk.by_ref().take(count) {
            keys.push(&key[..]);
        }
        let next = walk.next().map_or(0, |(&seq, _)| seq);
        (next, keys)
    }
}

/// Does `text` match the glob `pattern`, as Redis matches KEYS and SCAN patterns?
///
/// `*` matches any run of bytes, `?` any one byte, `[abc]`, `[a-z]` and `[^a]` one byte of
/// (or not of) a set, and `\` makes the next byte literal. On a mismatch the loop goes back to
/// the last `*` only, never further, so it takes at most pattern × text steps: a pattern
/// like `*a*a*a*a*b` cannot make it run for exponential time, as it once could in Redis.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where to resume after the last `*`: the pattern just past it, and the text position
    // that `*` has swallowed up to.
    let mut resume: Option<(usize, usize)> = None;
    while t < text.len() {
        if pattern.get(p) == Some(&b'*') {
            p += 1;
            resume = Some((p, t));
            continue;
        }
        if let Some(next) = match_one(pattern, p, text[t]) {
            p = next;
            t += 1;
            continue;
        }
        let Some((after_star, swallowed)) = resume else {
            return false;
        };
        // Let the last `*` swallow one more byte, and try the rest of the pattern again.
        p = after_star;
        t = swallowed + 1;
        resume = Some((after_star, t));
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// If the pattern element at `p` (anything but `*`) matches the byte `c`, the position of the
/// next element.
fn match_one(pattern: &[u8], p: usize, c: u8) -> Option<usize> {
    match *pattern.get(p)? {
        b'?' => Some(p + 1),
        b'\\' if p + 1 < pattern.len() => (pattern[p + 1] == c).then_some(p + 2),
        b'[' => match_class(pattern, p + 1, c),
        b => (b == c).then_some(p + 1),
    }
}

/// Match `c` against the set that starts at `p`, just after its `[`. A set left open runs to
/// the end of the pattern, as in Redis.
fn match_class(pattern: &[u8], mut p: usize, c: u8) -> Option<usize> {
    let negate = pattern.get(p) == Some(&b'^');
    if negate {
        p += 1;
    }
    let mut hit = false;
    while p < pattern.len() && pattern[p] != b']' {
        if pattern[p] == b'\\' && p + 1 < pattern.len() {
            hit |= pattern[p + 1] == c;
            p += 2;
        } else if p + 2 < pattern.len() && pattern[p + 1] == b'-' && pattern[p + 2] != b']' {
            let (a, b) = (pattern[p], pattern[p + 2]);
            hit |= (a.min(b)..=a.max(b)).contains(&c);
            p += 3;
        } else {
            hit |= pattern[p] == c;
            p += 1;
        }
    }
    // Past the `]` (or at the end of an open set).
    let next = (p + 1).min(pattern.len());
    (hit != negate).then_some(next)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn set_get_remove_and_overwrite_keep_the_scan_place() {
        let mut s = Store::new();
        s.set(b"a", b"1", Ttl::Clear);
        s.set(b"b", b"2", Ttl::Clear);
        s.set(b"a", b"3", Ttl::Clear);
        assert_eq!(s.get(b"a"), Some(&b"3"[..]));
        assert_eq!(s.keys().collect::<Vec<_>>(), [&b"a"[..], b"b"]);
        assert!(s.remove(b"a"));
        assert!(!s.remove(b"a"));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn deadlines_expire_keys_and_can_be_changed() {
        let mut s = Store::new();
        let past = Instant::now();
        let future = past + Duration::from_secs(100);
        s.set(b"gone", b"x", Ttl::At(past));
        s.set(b"stays", b"x", Ttl::At(future));
        s.set(b"kept", b"x", Ttl::At(past));
        s.set(b"kept", b"y", Ttl::Keep);
        assert!(s.set_deadline(b"kept", None));
        s.expire_due();
        assert_eq!(s.keys().collect::<Vec<_>>(), [&b"stays"[..], b"kept"]);
        assert_eq!(s.deadline(b"stays"), Some(Some(future)));
        assert_eq!(s.volatile_len(), 1);
        s.set(b"stays", b"z", Ttl::Clear);
        assert_eq!(s.deadline(b"stays"), Some(None));
        assert_eq!(s.volatile_len(), 0);
    }

    #[test]
    fn a_scan_finds_every_key_present_throughout_however_the_keyspace_changes() {
        let mut s = Store::new();
        for i in 0..1000 {
            s.set(format!("old:{i}").as_bytes(), b"v", Ttl::Clear);
        }
        let mut found = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            let (next, keys) = s.scan(cursor, 7);
            found.extend(keys.iter().map(|k| k.to_vec()));
            // Between the first steps: add many keys (the hash map grows and rehashes),
            // remove some that are not "present throughout"; overwrite others all along.
            if round < 40 {
                for j in 0..50 {
                    s.set(format!("new:{round}:{j}").as_bytes(), b"v", Ttl::Clear);
                }
                s.remove(format!("new:{round}:3").as_bytes());
            }
            s.set(format!("old:{}", round % 1000).as_bytes(), b"w", Ttl::Clear);
            round += 1;
            if next == 0 {
                break;
            }
            cursor = next;
        }
        for i in 0..1000 {
            assert!(found.contains(format!("old:{i}").as_bytes()), "old:{i}");
        }
    }

    #[test]
    fn glob_patterns_match_like_redis() {
        let yes = [
            ("*", ""),
            ("*", "abc"),
            ("a*", "abc"),
            ("*c", "abc"),
            ("a?c", "abc"),
            ("h[ae]llo", "hello"),
            ("h[^e]llo", "hallo"),
            ("h[a-b]llo", "hbllo"),
            ("h[b-a]llo", "hallo"),
            ("a\\*b", "a*b"),
            ("[\\]]", "]"),
            ("user:*:name", "user:42:name"),
            ("*a*a*a*a*a*a*a*a*b", &format!("{}b", "a".repeat(60))),
        ];
        for (p, t) in yes {
            assert!(glob_match(p.as_bytes(), t.as_bytes()), "{p} ~ {t}");
        }
        let no = [
            ("a*", "bac"),
            ("a?c", "ac"),
            ("h[ae]llo", "hillo"),
            ("h[^e]llo", "hello"),
            ("a\\*b", "axb"),
            ("abc", "abcd"),
            ("*a*a*a*a*a*a*a*a*b", &"a".repeat(60)),
        ];
        for (p, t) in no {
            assert!(!glob_match(p.as_bytes(), t.as_bytes()), "{p} !~ {t}");
        }
    }
}
