//! TFRecord framing, as TensorBoard's event files hold it: each record is
//! its length (u64 LE), a masked CRC-32C of those 8 bytes (u32 LE), the
//! data, and a masked CRC-32C of the data.

use std::io::{self, Read};

const HEADER: usize = 12;
const FOOTER: usize = 4;
/// How much is read from the file at a time: large files never sit in memory whole.
const CHUNK: usize = 4 << 20;

/// The CRC-32C TFRecord stores: rotated and offset, so that a CRC of data
/// holding CRCs does not come out trivially.
pub fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Where reading a file stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// At the end of the last record, where the file ends.
    End,
    /// Inside the record starting at this offset: the file ends there (a
    /// writer is still at it, or the file was cut).
    Torn { at: u64 },
    /// The length of the record starting at this offset fails its check:
    /// nothing after it can be trusted.
    BadLength { at: u64 },
}

/// What one record holds: its data, or `None` when the data fails its check.
pub type Data<'a> = Option<&'a [u8]>;

/// Reads records from `src`, which is positioned at file offset `start`,
/// handing each to `each` with its offset. Returns the offset after the
/// last whole record (where to read next) and why it stopped.
pub fn scan(mut src: impl Read, start: u64, mut each: impl FnMut(u64, Data<'_>)) -> io::Result<(u64, Stop)> {
    let mut buf: Vec<u8> = Vec::new();
    // buf[0] is at file offset `base`; records are taken from buf[pos..].
    let (mut base, mut pos, mut eof) = (start, 0usize, false);
    loop {
        let at = base + pos as u64;
        let avail = &buf[pos..];
        let need = match frame(avail) {
            Frame::Whole { data_crc_ok, len } => {
                let data = &avail[HEADER..HEADER + len];
                each(at, data_crc_ok.then_some(data));
                pos += HEADER + len + FOOTER;
                continue;
            }
            Frame::BadLength => return Ok((at, Stop::BadLength { at })),
            Frame::Needs(n) => n,
        };
        if eof {
            let stop = if avail.is_empty() { Stop::End } else { Stop::Torn { at } };
            return Ok((at, stop));
        }
        buf.drain(..pos);
        base += pos as u64;
        pos = 0;
        // A record longer than a chunk is read whole; a length claiming more
        // than the file holds only reads to its end.
        let want = need.saturating_sub(buf.len()).max(CHUNK);
        buf.reserve(want.min(CHUNK));
        let got = (&mut src).take(want as u64).read_to_end(&mut buf)?;
        eof = got < want;
    }
}

enum Frame {
    /// A whole record of `len` data bytes at the start of the slice.
    Whole {
        data_crc_ok: bool,
        len: usize,
    },
    BadLength,
    /// The slice ends inside the record, which is this many bytes long (the
    /// header's when even the length is not there yet).
    Needs(usize),
}

fn frame(bytes: &[u8]) -> Frame {
    let Some(header) = bytes.get(..HEADER) else {
        return Frame::Needs(HEADER);
    };
    let (len, len_crc) = header.split_at(8);
    if masked_crc(len) != u32::from_le_bytes(len_crc.try_into().expect("4 bytes")) {
        return Frame::BadLength;
    }
    let len = u64::from_le_bytes(len.try_into().expect("8 bytes"));
    let Some(total) = usize::try_from(len).ok().and_then(|l| l.checked_add(HEADER + FOOTER)) else {
        return Frame::BadLength;
    };
    let Some(record) = bytes.get(..total) else {
        return Frame::Needs(total);
    };
    let len = total - HEADER - FOOTER;
    let (data, crc) = record[HEADER..].split_at(len);
    Frame::Whole { data_crc_ok: masked_crc(data) == u32::from_le_bytes(crc.try_into().expect("4 bytes")), len }
}

/// `data` framed as one record.
#[cfg(test)]
pub fn framed(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = len.to_vec();
    out.extend(masked_crc(&len).to_le_bytes());
    out.extend(data);
    out.extend(masked_crc(data).to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    type Records = Vec<(u64, Option<Vec<u8>>)>;

    fn read(bytes: &[u8], start: u64) -> (Records, u64, Stop) {
        let mut got = Vec::new();
        let (next, stop) =
            scan(&bytes[start as usize..], start, |at, d| got.push((at, d.map(<[u8]>::to_vec)))).unwrap();
        (got, next, stop)
    }

    #[test]
    fn masks_as_tensorflow_does() {
        // As tensorboardX's masked_crc32c computes them.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283, "the CRC-32C check value");
        assert_eq!(masked_crc(&24u64.to_le_bytes()), 0x224b_7fa3);
        assert_eq!(masked_crc(b"x"), 0x61aa_3d50);
    }

    #[test]
    fn reads_records_and_where_they_start() {
        let mut file = framed(b"one");
        file.extend(framed(b""));
        file.extend(framed(b"three"));
        let (got, next, stop) = read(&file, 0);
        assert_eq!(got, vec![(0, Some(b"one".to_vec())), (19, Some(vec![])), (35, Some(b"three".to_vec()))]);
        assert_eq!((next, stop), (file.len() as u64, Stop::End));
        let (got, next, _) = read(&file, 19);
        assert_eq!(got.len(), 2, "from an offset, only what follows");
        assert_eq!(next, file.len() as u64);
    }

    #[test]
    fn a_torn_record_is_left_for_later() {
        let mut file = framed(b"whole");
        let second = framed(b"still being written");
        for cut in [1, 11, 12, 20, second.len() - 1] {
            let mut torn = file.clone();
            torn.extend(&second[..cut]);
            let (got, next, stop) = read(&torn, 0);
            assert_eq!(got.len(), 1, "cut at {cut}");
            assert_eq!((next, stop), (21, Stop::Torn { at: 21 }), "cut at {cut}");
        }
        file.extend(&second);
        let (got, next, stop) = read(&file, 21);
        assert_eq!(got, vec![(21, Some(b"still being written".to_vec()))]);
        assert_eq!((next, stop), (file.len() as u64, Stop::End));
    }

    #[test]
    fn a_bad_data_crc_skips_the_record_a_bad_length_crc_stops() {
        let mut file = framed(b"first");
        file.extend(framed(b"second"));
        file.extend(framed(b"third"));
        let mut bad_data = file.clone();
        bad_data[21 + 12] ^= 0x01;
        let (got, next, stop) = read(&bad_data, 0);
        assert_eq!(got, vec![(0, Some(b"first".to_vec())), (21, None), (43, Some(b"third".to_vec()))]);
        assert_eq!((next, stop), (file.len() as u64, Stop::End));

        let mut bad_length = file.clone();
        bad_length[21] ^= 0x40;
        let (got, next, stop) = read(&bad_length, 0);
        assert_eq!(got, vec![(0, Some(b"first".to_vec()))]);
        assert_eq!((next, stop), (21, Stop::BadLength { at: 21 }));
    }

    #[test]
    fn records_longer_than_a_chunk_are_read_whole() {
        let big = vec![7u8; CHUNK + 1000];
        let mut file = framed(b"a");
        file.extend(framed(&big));
        file.extend(framed(b"b"));
        let (got, _, stop) = read(&file, 0);
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].1.as_deref(), Some(&big[..]));
        assert_eq!(stop, Stop::End);
    }

    #[test]
    fn a_huge_claimed_length_reads_only_the_file() {
        let len = (u64::MAX / 2).to_le_bytes();
        let mut file = len.to_vec();
        file.extend(masked_crc(&len).to_le_bytes());
        file.extend(b"short");
        let (got, next, stop) = read(&file, 0);
        assert!(got.is_empty());
        assert!(matches!((next, stop), (0, Stop::Torn { at: 0 }) | (0, Stop::BadLength { at: 0 })), "{stop:?}");
    }
}
