//! Run ids: `r-` + creation time (6 base32 chars, whole seconds since 2024) +
//! 4 random base32 chars. Short, sortable as strings, no coordination needed.

use std::io::Read;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const EPOCH_2024: u64 = 1_704_067_200;
const TIME_CHARS: u32 = 6;
const RANDOM_CHARS: u32 = 4;
pub const PREFIX: &str = "r-";

/// A new id for a run created at `now` (seconds since the Unix epoch).
pub fn new_run_id(now: f64) -> String {
    let secs = (now as u64).saturating_sub(EPOCH_2024);
    let mut id = String::with_capacity(12);
    id.push_str(PREFIX);
    push_base32(&mut id, secs, TIME_CHARS);
    push_base32(&mut id, u64::from(random_u32()), RANDOM_CHARS);
    id
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

fn random_u32() -> u32 {
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
    fn ids_made_in_the_same_second_differ() {
        let ids: std::collections::HashSet<_> = (0..200).map(|_| new_run_id(1e9)).collect();
        assert!(ids.len() > 195);
    }
}
