//! The compact form the index stores metric series in: chunks of up to
//! [`MAX_POINTS`] points of one metric, in logged order, that read back bit
//! for bit.
//!
//! A chunk is a tag byte; three LEB128 varints: the number of points, the
//! bytes of the steps' column and of the times'; then the three columns,
//! steps, times and values, each a bit stream (least significant bit first)
//! of every point in turn. The state before the first point is all zeros,
//! so the first point is written like any other.
//!
//! - **step**: the change of its difference from the step before (delta of
//!   delta), zig-zagged, in the first of [`WIDTHS`] it fits, announced by as
//!   many 1 bits as that width's place and a 0 (no 0 after the widest). The
//!   arithmetic wraps, so any i64 sequence round-trips, and a steady stride
//!   costs one bit.
//! - **time**: the same, over the f64's bits. The times of one run share an
//!   exponent, where the bits grow in step with the time, so a steady pace
//!   costs a few bits, jitter about its logarithm, and every time
//!   round-trips.
//! - **value**: the XOR of its bits with the value before, as in Chimp
//!   (Liakos et al., VLDB 2022), a refinement of Gorilla's (Pelkonen et al.,
//!   VLDB 2015) with a one-bit repeat as Gorilla has it: `0` for a repeat;
//!   `1 0` and the bits below the last leading zeros; `1 1 0`, 3 bits of
//!   leading zeros, 6 of length minus one and the bits between, when many
//!   trailing bits are zero; `1 1 1`, 3 bits of leading zeros and the bits
//!   below them otherwise. Bits are bits: NaN payloads, ±Inf and -0.0 stay
//!   as they were.

use std::fmt;

use crate::model::Point;

/// Points per stored chunk.
pub const MAX_POINTS: usize = 4096;

/// The first byte of every chunk, for the encoding described above.
const TAG: u8 = 1;

/// The widths a zig-zagged delta of delta is written in. The small ones
/// fit a steady pace with jitter of a few units of the last place; 64 fits
/// anything.
const WIDTHS: [u32; 8] = [0, 4, 9, 14, 18, 24, 32, 64];
const WIDEST: u32 = WIDTHS.len() as u32 - 1;
/// The place in [`WIDTHS`] of a number of so many significant bits.
const PLACE: [u8; 65] = {
    let (mut table, mut bits, mut place) = ([0; 65], 0, 0);
    while bits <= 64 {
        while WIDTHS[place] < bits as u32 {
            place += 1;
        }
        table[bits] = place as u8;
        bits += 1;
    }
    table
};

/// Why stored bytes are not a chunk.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Damaged(&'static str);

impl fmt::Display for Damaged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Appends `points` as one chunk.
pub fn encode(out: &mut Vec<u8>, points: &[Point]) {
    let (mut step, mut time, mut value) = (Deltas::default(), Deltas::default(), Xor::default());
    let steps = column(points, |bits, p| step.put(bits, p.step as u64));
    let times = column(points, |bits, p| time.put(bits, p.time.to_bits()));
    let values = column(points, |bits, p| value.put(bits, p.value.to_bits()));
    out.push(TAG);
    for n in [points.len(), steps.len(), times.len()] {
        put_varint(out, n as u64);
    }
    for c in [steps, times, values] {
        out.extend_from_slice(&c);
    }
}

fn column(points: &[Point], mut put: impl FnMut(&mut BitWriter, &Point)) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(points.len());
    let mut bits = BitWriter { out: &mut bytes, acc: 0, used: 0 };
    points.iter().for_each(|p| put(&mut bits, p));
    bits.finish();
    bytes
}

/// Appends the points of one chunk to `out`; on damaged bytes it appends
/// nothing.
pub fn decode_into(out: &mut Vec<Point>, bytes: &[u8]) -> Result<(), Damaged> {
    let [tag, rest @ ..] = bytes else { return Err(Damaged("it is empty")) };
    if *tag != TAG {
        return Err(Damaged("it starts with an unknown tag"));
    }
    let (n, [steps, times, values]) = columns(rest)?;
    // Every point takes at least a bit of each column: a larger count is not this chunk's.
    if n > steps.len().min(times.len()).min(values.len()) as u64 * 8 {
        return Err(Damaged("it counts more points than it holds"));
    }
    let start = out.len();
    let read = read_points(out, [steps, times, values], n as usize);
    if read.is_err() {
        out.truncate(start);
    }
    read
}

/// The point count and the three columns of a chunk, from its bytes after the tag.
fn columns(bytes: &[u8]) -> Result<(u64, [&[u8]; 3]), Damaged> {
    let cut = Damaged("its header is cut short");
    let (n, rest) = varint(bytes).ok_or(cut)?;
    let (steps_len, rest) = varint(rest).ok_or(cut)?;
    let (times_len, rest) = varint(rest).ok_or(cut)?;
    let long = Damaged("its columns are longer than it is");
    let (steps, rest) = split(rest, steps_len).ok_or(long)?;
    let (times, values) = split(rest, times_len).ok_or(long)?;
    Ok((n, [steps, times, values]))
}

fn split(bytes: &[u8], at: u64) -> Option<(&[u8], &[u8])> {
    bytes.split_at_checked(usize::try_from(at).ok()?)
}

/// Reads the three columns side by side: each is a chain of dependent bit
/// reads, and the processor overlaps independent ones.
fn read_points(out: &mut Vec<Point>, [steps, times, values]: [&[u8]; 3], n: usize) -> Result<(), Damaged> {
    out.reserve(n);
    let (mut step_bits, mut time_bits, mut value_bits) =
        (BitReader::new(steps), BitReader::new(times), BitReader::new(values));
    let (mut step, mut time, mut value) = (Deltas::default(), Deltas::default(), Xor::default());
    for _ in 0..n {
        let step = step.take(&mut step_bits) as i64;
        let time = f64::from_bits(time.take(&mut time_bits));
        let value = value.take(&mut value_bits).ok_or(Damaged("a value's change is wider than 64 bits"))?;
        out.push(Point { step, time, value: f64::from_bits(value) });
    }
    if step_bits.overran() || time_bits.overran() || value_bits.overran() {
        return Err(Damaged("it ends before its last point"));
    }
    Ok(())
}

/// The last number of a column and its last difference.
#[derive(Default)]
struct Deltas {
    last: u64,
    delta: u64,
}

impl Deltas {
    #[inline]
    fn put(&mut self, bits: &mut BitWriter, x: u64) {
        let delta = x.wrapping_sub(self.last);
        let dod = delta.wrapping_sub(self.delta) as i64;
        (self.last, self.delta) = (x, delta);
        let zigzag = ((dod << 1) ^ (dod >> 63)) as u64;
        let place = PLACE[64 - zigzag.leading_zeros() as usize] as u32;
        let ones = (1u64 << place) - 1;
        if place == WIDEST {
            bits.put(ones, place);
            bits.put(zigzag, 64);
        } else {
            bits.put(ones | zigzag << (place + 1), place + 1 + WIDTHS[place as usize]);
        }
    }

    #[inline]
    fn take(&mut self, bits: &mut BitReader) -> u64 {
        let word = bits.peek();
        let place = (!word).trailing_zeros().min(WIDEST);
        let announced = if place == WIDEST { place } else { place + 1 };
        let zigzag = bits.take_after(word, announced, WIDTHS[place as usize]);
        let dod = (zigzag >> 1) ^ (zigzag & 1).wrapping_neg();
        self.delta = self.delta.wrapping_add(dod);
        self.last = self.last.wrapping_add(self.delta);
        self.last
    }
}

/// The last value's bits, and the leading zeros (rounded down to one of
/// [`LEADS`]) of the last change written in full.
struct Xor {
    last: u64,
    lead: u32,
}

/// Leading zeros are written as one of these, in 3 bits.
const LEADS: [u32; 8] = [0, 8, 12, 16, 18, 20, 22, 24];
/// A change with more trailing zeros than this is written without them.
const TRAILING: u32 = 6;
/// The place in [`LEADS`] of a number of leading zeros.
const CLASS: [u8; 65] = {
    let (mut table, mut zeros, mut class) = ([0; 65], 0, 0);
    while zeros <= 64 {
        if class + 1 < LEADS.len() && LEADS[class + 1] <= zeros as u32 {
            class += 1;
        }
        table[zeros] = class as u8;
        zeros += 1;
    }
    table
};

impl Default for Xor {
    fn default() -> Xor {
        // No change has 64 leading zeros, so the first one is written in full.
        Xor { last: 0, lead: 64 }
    }
}

impl Xor {
    #[inline]
    fn put(&mut self, bits: &mut BitWriter, x: u64) {
        let change = x ^ self.last;
        self.last = x;
        if change == 0 {
            bits.put(0, 1);
            return;
        }
        let class = CLASS[change.leading_zeros() as usize] as usize;
        let (lead, trail) = (LEADS[class], change.trailing_zeros());
        if trail > TRAILING {
            let len = 64 - lead - trail;
            bits.put(0b011 | (class as u64) << 3 | (len as u64 - 1) << 6, 12);
            bits.put(change >> trail, len);
        } else if lead == self.lead {
            bits.put(0b01, 2);
            bits.put(change, 64 - lead);
        } else {
            bits.put(0b111 | (class as u64) << 3, 6);
            bits.put(change, 64 - lead);
            self.lead = lead;
        }
    }

    /// The next value's bits; None when a change does not fit in 64 bits.
    #[inline]
    fn take(&mut self, bits: &mut BitReader) -> Option<u64> {
        let word = bits.peek();
        let class = |at: u32| LEADS[(word >> at) as usize & 7];
        let change = if word & 1 == 0 {
            bits.skip(1);
            return Some(self.last);
        } else if word & 2 == 0 {
            bits.take_after(word, 2, 64 - self.lead)
        } else if word & 4 == 0 {
            let lead = class(3);
            let len = (word >> 6) as u32 % 64 + 1;
            bits.take_after(word, 12, len) << 64u32.checked_sub(lead + len)?
        } else {
            self.lead = class(3);
            bits.take_after(word, 6, 64 - self.lead)
        };
        self.last ^= change;
        Some(self.last)
    }
}

/// Appends bits to a byte vector, least significant first.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    /// Bits not yet written out: the low `used` ones.
    acc: u64,
    used: u32,
}

impl BitWriter<'_> {
    /// Appends the low `width` bits of `x` (at most 64; the rest must be 0).
    #[inline]
    fn put(&mut self, x: u64, width: u32) {
        if width == 0 {
            return;
        }
        self.acc |= x << self.used;
        let total = self.used + width;
        if total < 64 {
            self.used = total;
            return;
        }
        self.out.extend_from_slice(&self.acc.to_le_bytes());
        self.acc = if self.used == 0 { 0 } else { x >> (64 - self.used) };
        self.used = total - 64;
    }

    fn finish(self) {
        let bytes = self.used.div_ceil(8) as usize;
        self.out.extend_from_slice(&self.acc.to_le_bytes()[..bytes]);
    }
}

/// Reads bits as [`BitWriter`] wrote them. Past the end it reads zeros and
/// keeps counting, so that a cut stream is noticed once, at the end.
struct BitReader<'a> {
    bytes: &'a [u8],
    /// Bits read so far.
    pos: usize,
}

/// Bits [`BitReader::peek`] has ready at least.
const READY: u32 = 56;

impl BitReader<'_> {
    fn new(bytes: &[u8]) -> BitReader<'_> {
        BitReader { bytes, pos: 0 }
    }

    /// The next [`READY`] bits (at least), not consumed.
    #[inline]
    fn peek(&self) -> u64 {
        self.word(self.pos / 8) >> (self.pos % 8)
    }

    /// The eight bytes from byte `at`, zeros past the end.
    #[inline]
    fn word(&self, at: usize) -> u64 {
        match self.bytes.get(at..at + 8) {
            Some(b) => u64::from_le_bytes(b.try_into().unwrap_or_default()),
            None => {
                let mut b = [0u8; 8];
                let tail = self.bytes.get(at..).unwrap_or_default();
                b[..tail.len()].copy_from_slice(tail);
                u64::from_le_bytes(b)
            }
        }
    }

    #[inline]
    fn skip(&mut self, width: u32) {
        self.pos += width as usize;
    }

    /// The next `width` bits, at most [`READY`].
    #[inline]
    fn take(&mut self, width: u32) -> u64 {
        let x = self.peek() & ((1u64 << width) - 1);
        self.skip(width);
        x
    }

    /// The `width` bits (at most 64) after the first `skip` of `word`, which
    /// [`BitReader::peek`] just gave: from `word` itself when they are in it.
    #[inline]
    fn take_after(&mut self, word: u64, skip: u32, width: u32) -> u64 {
        if skip + width <= READY {
            self.skip(skip + width);
            return (word >> skip) & ((1u64 << width) - 1);
        }
        self.skip(skip);
        self.take_long(width)
    }

    /// The next `width` bits, at most 64.
    #[inline]
    fn take_long(&mut self, width: u32) -> u64 {
        if width <= READY {
            return self.take(width);
        }
        let (at, shift) = (self.pos / 8, self.pos % 8);
        let mut x = self.word(at) >> shift;
        if shift > 0 {
            x |= (self.bytes.get(at + 8).copied().unwrap_or(0) as u64) << (64 - shift);
        }
        self.skip(width);
        if width == 64 { x } else { x & ((1u64 << width) - 1) }
    }

    /// Whether more bits were read than the stream holds.
    fn overran(&self) -> bool {
        self.pos > self.bytes.len() * 8
    }
}

fn put_varint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push(x as u8 | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// A varint and the bytes after it.
fn varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut x = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        x |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Some((x, &bytes[i + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(points: &[Point]) -> (Vec<u8>, Vec<Point>) {
        let mut bytes = Vec::new();
        encode(&mut bytes, points);
        let mut back = Vec::new();
        decode_into(&mut back, &bytes).unwrap();
        (bytes, back)
    }

    /// Points compared bit for bit (`==` on f64 would let NaN fail and -0.0 pass).
    fn bits(points: &[Point]) -> Vec<(i64, u64, u64)> {
        points.iter().map(|p| (p.step, p.time.to_bits(), p.value.to_bits())).collect()
    }

    #[test]
    fn encoding_round_trips_non_finite_values_and_extreme_steps_bit_for_bit() {
        let quiet_nan_with_payload = f64::from_bits(0x7ff8_0000_dead_beef);
        let signalling_nan = f64::from_bits(0x7ff0_0000_0000_0001);
        let values = [1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.0, quiet_nan_with_payload];
        let steps = [0, i64::MAX, i64::MIN, -1, i64::MAX, 3, 3];
        let times = [1.7e9, -0.0, f64::NAN, f64::MIN_POSITIVE, f64::MAX, signalling_nan, 5e-324];
        let pts: Vec<Point> = (0..7).map(|i| Point { step: steps[i], time: times[i], value: values[i] }).collect();
        let (_, back) = round_trip(&pts);
        assert_eq!(bits(&back), bits(&pts));
    }

    #[test]
    fn a_steady_series_takes_a_few_bytes_a_point() {
        let pts: Vec<Point> = (0..MAX_POINTS as i64)
            .map(|s| Point { step: s, time: 1.7e9 + s as f64 * 0.25, value: (s % 7) as f64 })
            .collect();
        let (bytes, back) = round_trip(&pts);
        assert_eq!(bits(&back), bits(&pts));
        assert!(bytes.len() < pts.len() * 3, "{} bytes", bytes.len());
    }

    #[test]
    fn decoding_appends_to_what_is_there() {
        let a = [Point { step: 1, time: 2.0, value: 3.0 }];
        let b = [Point { step: 9, time: 8.0, value: 7.0 }, Point { step: 10, time: 8.5, value: f64::NAN }];
        let (mut ea, mut eb) = (Vec::new(), Vec::new());
        encode(&mut ea, &a);
        encode(&mut eb, &b);
        let mut out = Vec::new();
        decode_into(&mut out, &ea).unwrap();
        decode_into(&mut out, &eb).unwrap();
        assert_eq!(bits(&out), bits(&[a[0], b[0], b[1]]));
    }

    #[test]
    fn damaged_chunks_are_refused_and_add_nothing() {
        let pts: Vec<Point> =
            (0..100).map(|s| Point { step: s * s, time: s as f64, value: 1.0 / (s + 1) as f64 }).collect();
        let mut bytes = Vec::new();
        encode(&mut bytes, &pts);
        let mut out = vec![Point { step: 0, time: 0.0, value: 0.0 }];
        assert_eq!(decode_into(&mut out, &[]), Err(Damaged("it is empty")));
        assert_eq!(decode_into(&mut out, &[9, 1, 0]), Err(Damaged("it starts with an unknown tag")));
        assert_eq!(decode_into(&mut out, &[TAG, 0x80]), Err(Damaged("its header is cut short")));
        assert_eq!(decode_into(&mut out, &[TAG, 1, 1]), Err(Damaged("its header is cut short")));
        assert_eq!(decode_into(&mut out, &[TAG, 1, 5, 1, 0]), Err(Damaged("its columns are longer than it is")));
        assert_eq!(
            decode_into(&mut out, &[TAG, 9, 1, 1, 0, 0, 0]),
            Err(Damaged("it counts more points than it holds"))
        );
        assert_eq!(
            decode_into(&mut out, &[TAG, 2, 1, 1, 0xff, 0, 0xff]),
            Err(Damaged("it ends before its last point"))
        );
        let too_wide = [TAG, 1, 1, 1, 0, 0, 0xfb, 0x0f];
        assert_eq!(decode_into(&mut out, &too_wide), Err(Damaged("a value's change is wider than 64 bits")));
        assert_eq!(decode_into(&mut out, &bytes[..bytes.len() - 20]), Err(Damaged("it ends before its last point")));
        assert_eq!(out.len(), 1);
    }

    fn any_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<u64>().prop_map(f64::from_bits),
            Just(f64::NAN),
            Just(-0.0),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            (-1000i32..1000).prop_map(|i| i as f64 / 8.0),
        ]
    }

    fn any_step() -> impl Strategy<Value = i64> {
        prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX), -5i64..5]
    }

    /// Series as they are logged: a run of steady steps and times with
    /// repeated or slowly changing values, cut by arbitrary points.
    fn any_series() -> impl Strategy<Value = Vec<Point>> {
        let arbitrary = (any_step(), any_f64(), any_f64()).prop_map(|(step, time, value)| Point { step, time, value });
        let steady = (any_step(), 1i64..1000, 1.0e9..2.0e9f64, 0.0..10.0f64, any_f64(), 1usize..50).prop_map(
            |(start, stride, t0, pace, v0, n)| {
                (0..n as i64)
                    .map(|i| Point {
                        step: start.wrapping_add(i.wrapping_mul(stride)),
                        time: t0 + i as f64 * pace,
                        value: if i % 3 == 0 { v0 } else { v0 * 0.5 + i as f64 },
                    })
                    .collect::<Vec<_>>()
            },
        );
        prop::collection::vec(prop_oneof![arbitrary.prop_map(|p| vec![p]), steady], 0..20)
            .prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn any_points_round_trip_bit_for_bit(pts in any_series()) {
            let (_, back) = round_trip(&pts);
            prop_assert_eq!(bits(&back), bits(&pts));
        }

        #[test]
        fn damaged_chunks_decode_or_are_refused_without_panic(
            pts in any_series(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = Vec::new();
            encode(&mut bytes, &pts);
            for (at, byte) in flips {
                let at = at.index(bytes.len());
                bytes[at] ^= byte;
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            let mut out = Vec::new();
            if decode_into(&mut out, &bytes).is_err() {
                prop_assert!(out.is_empty());
            }
        }

        #[test]
        fn any_count_prefix_is_refused_or_decoded(n in any::<u64>(), tail in prop::collection::vec(any::<u8>(), 0..64)) {
            let mut bytes = vec![TAG];
            put_varint(&mut bytes, n);
            bytes.extend(tail);
            let mut out = Vec::new();
            let _ = decode_into(&mut out, &bytes);
        }
    }
}
