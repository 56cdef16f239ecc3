//! Run ids: `r-` + creation time (6 base32 chars, whole seconds since 2024) +
//! 4 random base32 chars. Short, sortable as strings, no coordination needed.
//! Notebook entries and reviews take ids of the same shape with their own prefix.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const EPOCH_2024: u64 = 1_704_067_200;
const TIME_CHARS: u32 = 6;
const RANDOM_CHARS: u32 = 4;
pub const PREFIX: &str = "r-";

/// How many values the random part holds: 4 base32 chars, 20 bits.
pub const RANDOM_VALUES: u32 = 1 << (5 * RANDOM_CHARS);

/// Where the random part of new ids comes from: the OS, or a sequence
/// counting up from a seed, so that ids repeat exactly from one session to
/// the next (tests). Clones share one sequence. Seeded ids of one second sort
/// in the order they were drawn (until the sequence wraps past
/// [`RANDOM_VALUES`]); whoever makes an id skips one already taken (a run
/// folder, a notebook entry, a review), so ids stay unique in a lab.
#[derive(Debug, Clone, Default)]
pub struct Ids {
    seeded: Option<Arc<AtomicU32>>,
}

impl Ids {
    /// The sequence `seed`, `seed + 1`, ...; `seed` below [`RANDOM_VALUES`].
    pub fn seeded(seed: u64) -> Result<Ids, String> {
        match u32::try_from(seed) {
            Ok(s) if s < RANDOM_VALUES => Ok(Ids { seeded: Some(Arc::new(AtomicU32::new(s))) }),
            _ => Err(format!("bad id seed {seed}: use a whole number from 0 to {}", RANDOM_VALUES - 1)),
        }
    }

    /// A new id: `prefix`, the time `now` (seconds since the Unix epoch), the random part.
    pub fn new_id(&self, prefix: &str, now: f64) -> String {
        let secs = (now as u64).saturating_sub(EPOCH_2024);
        let mut id = String::with_capacity(prefix.len() + 10);
        id.push_str(prefix);
        push_base32(&mut id, secs, TIME_CHARS);
        push_base32(&mut id, u64::from(self.draw() % RANDOM_VALUES), RANDOM_CHARS);
        id
    }

    fn draw(&self) -> u32 {
        match &self.seeded {
            Some(next) => next.fetch_add(1, Ordering::Relaxed),
            None => random_u32(),
        }
    }
}

/// A new id for a run created at `now` (seconds since the Unix epoch), its
/// random part from the OS.
pub fn new_run_id(now: f64) -> String {
    Ids::default().new_id(PREFIX, now)
}

/// True for strings of the id's shape.
pub fn looks_like_run_id(s: &str) -> bool {
    s.strip_prefix(PREFIX).is_some_and(|rest| {
        rest.len() == (TIME_CHARS + RANDOM_CHARS) as usize && rest.bytes().all(|b| ALPHABET.contains(&b))
    })
}

fn push_base32(out: &mut String, value: u64, chars: u32) {
    for i in (0..chars).rev() {
        let digit = (value >> (5 * i)) & 31;
        out.push(ALPHABET[digit as usize] as char);
    }
}

/// 32 random bits from the OS.
pub fn random_u32() -> u32 {
    let mut buf = [0u8; 4];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).is_ok() {
        return u32::from_le_bytes(buf);
    }
    // No /dev/urandom: mix the clock and the pid, which is unique enough on one host.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    nanos ^ std::process::id().rotate_left(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_documented_shape_and_sort_by_time() {
        let a = new_run_id(1_764_135_391.0);
        let b = new_run_id(1_764_135_392.0);
        assert!(looks_like_run_id(&a), "{a}");
        assert_eq!(a.len(), 12);
        assert!(a < b, "{a} !< {b}");
        // Time chars are the documented encoding of seconds since 2024-01-01.
        let mut expected = String::new();
        push_base32(&mut expected, 1_764_135_391 - EPOCH_2024, 6);
        assert_eq!(&a[2..8], expected);
    }

    #[test]
    fn seeded_ids_repeat_and_count_up_in_drawing_order() {
        let draw = |ids: &Ids| (0..3).map(|_| ids.new_id(PREFIX, 1_764_135_391.0)).collect::<Vec<_>>();
        let (a, b) = (Ids::seeded(7).unwrap(), Ids::seeded(7).unwrap());
        let first = draw(&a);
        assert_eq!(first, draw(&b), "the same seed, the same ids");
        assert!(first.iter().all(|id| looks_like_run_id(id)), "{first:?}");
        assert_eq!(first.iter().map(|id| &id[8..]).collect::<Vec<_>>(), ["0007", "0008", "0009"]);
        // Clones draw from one sequence.
        assert!(a.clone().new_id(PREFIX, 1_764_135_391.0).ends_with("000a"));
        assert_eq!(Ids::seeded(0).unwrap().new_id("n-", 1_704_067_200.0), "n-0000000000");
        let last = Ids::seeded(u64::from(RANDOM_VALUES - 1)).unwrap();
        assert!(last.new_id(PREFIX, 0.0).ends_with("zzzz"));
        assert!(last.new_id(PREFIX, 0.0).ends_with("0000"), "the sequence wraps");
        for bad in [u64::from(RANDOM_VALUES), u64::MAX] {
            assert!(Ids::seeded(bad).unwrap_err().contains("from 0 to 1048575"), "{bad}");
        }
    }

    #[test]
    fn ids_made_in_the_same_second_differ() {
        let ids: std::collections::HashSet<_> = (0..200).map(|_| new_run_id(1e9)).collect();
        assert!(ids.len() > 195);
    }
}
