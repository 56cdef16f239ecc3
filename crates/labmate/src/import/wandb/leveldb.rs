//! The framing of a `.wandb` file, as wandb's writers (the Python
//! `datastore.py` and the Go `core/pkg/leveldb`) lay it out: a 7-byte
//! header (`:W&B`, the magic 0xBEE1 little-endian, version 0), then the
//! LevelDB log format in 32 KiB blocks counted from the file's first byte,
//! the header being the start of block 0. Each chunk has a 7-byte header:
//! the CRC-32 (IEEE, not masked, little-endian) of its type byte and
//! payload, the payload's length (u16 little-endian), its type (FULL, or
//! FIRST, MIDDLE... LAST of a record split across blocks). A chunk never
//! crosses a block; fewer than 7 bytes left in a block are a zero trailer.

use std::io::{self, Read};

pub const BLOCK: usize = 32 * 1024;
const CHUNK_HEADER: usize = 7;
pub const FILE_HEADER: usize = 7;
const MAGIC: u16 = 0xBEE1;
const VERSION: u8 = 0;

const FULL: u8 = 1;
const FIRST: u8 = 2;
const MIDDLE: u8 = 3;
const LAST: u8 = 4;

/// What the file's first bytes say it is, or why it is not a `.wandb`
/// file this labmate reads.
pub fn check_header(head: &[u8]) -> Result<(), String> {
    if head.len() < FILE_HEADER || &head[..4] != b":W&B" {
        return Err("not a wandb run file (no ':W&B' header)".into());
    }
    let magic = u16::from_le_bytes([head[4], head[5]]);
    if magic != MAGIC {
        return Err(format!("not a wandb run file (magic {magic:#06x}, not {MAGIC:#06x})"));
    }
    if head[6] != VERSION {
        return Err(format!("wandb run file version {} is not one this labmate reads ({VERSION})", head[6]));
    }
    Ok(())
}

/// One thing read from the chunks.
#[derive(Debug, PartialEq)]
pub enum Item {
    /// A whole record: where its first chunk starts, where its last ends.
    Record { start: u64, end: u64, data: Vec<u8> },
    /// Bytes at `offset` that fail a check; reading goes on at `resumed`
    /// (the next block, or the next chunk when only its place is wrong).
    Corrupt { offset: u64, resumed: u64, why: &'static str },
    /// The file ends inside the record that starts at `offset`: cut short,
    /// or still being written.
    Torn { offset: u64 },
}

/// Reads the records after the file header, a block at a time.
pub struct Reader<R> {
    r: R,
    buf: Vec<u8>,
    /// Valid bytes in `buf`; less than a block only for the last one.
    n: usize,
    /// Where the next chunk starts in `buf`.
    pos: usize,
    /// The file offset of `buf[0]`.
    block_at: u64,
    started: bool,
    /// The record being put together: its start and payload so far.
    partial: Option<(u64, Vec<u8>)>,
    /// After corruption, chunks that continue a record are passed over
    /// until one starts a record.
    recovering: bool,
    queued: Option<Item>,
    done: bool,
}

impl<R: Read> Reader<R> {
    /// A reader of `r` positioned at the start of the file.
    pub fn new(r: R) -> Reader<R> {
        Reader {
            r,
            buf: vec![0; BLOCK],
            n: 0,
            pos: 0,
            block_at: 0,
            started: false,
            partial: None,
            recovering: false,
            queued: None,
            done: false,
        }
    }

    /// Fills `buf` with the next block; false at the end of the file.
    fn next_block(&mut self) -> io::Result<bool> {
        if self.started {
            self.block_at += BLOCK as u64;
        }
        let mut n = 0;
        while n < BLOCK {
            match self.r.read(&mut self.buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.pos = if self.started { 0 } else { FILE_HEADER.min(n) };
        self.started = true;
        self.n = n;
        Ok(n > 0)
    }

    /// Passes over the rest of the block after a failed check at `offset`.
    fn corrupt(&mut self, offset: u64, why: &'static str) -> Item {
        self.pos = self.n.max(BLOCK);
        self.partial = None;
        self.recovering = true;
        Item::Corrupt { offset, resumed: self.block_at + BLOCK as u64, why }
    }

    pub fn next_item(&mut self) -> io::Result<Option<Item>> {
        if let Some(item) = self.queued.take() {
            return Ok(Some(item));
        }
        loop {
            if self.done {
                return Ok(None);
            }
            if !self.started || self.pos + CHUNK_HEADER > self.n {
                let short = self.started && self.n < BLOCK;
                let leftover = self.started && self.pos < self.n && self.n < BLOCK;
                if short || !self.next_block()? {
                    self.done = true;
                    let torn = match &self.partial {
                        Some((start, _)) => Some(*start),
                        None if leftover => Some(self.block_at + self.pos as u64),
                        None => None,
                    };
                    return Ok(torn.map(|offset| Item::Torn { offset }));
                }
                continue;
            }
            let at = self.block_at + self.pos as u64;
            let h = &self.buf[self.pos..self.pos + CHUNK_HEADER];
            let crc = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
            let len = u16::from_le_bytes([h[4], h[5]]) as usize;
            let kind = h[6];
            if crc == 0 && len == 0 && kind == 0 {
                // Zeros: the rest of the block was never written.
                self.pos = self.n;
                continue;
            }
            let end = self.pos + CHUNK_HEADER + len;
            if end > BLOCK {
                return Ok(Some(self.corrupt(at, "a chunk longer than the rest of its block")));
            }
            if end > self.n {
                self.done = true;
                let offset = self.partial.as_ref().map_or(at, |(start, _)| *start);
                return Ok(Some(Item::Torn { offset }));
            }
            if crc32fast::hash(&self.buf[self.pos + 6..end]) != crc {
                return Ok(Some(self.corrupt(at, "CRC mismatch")));
            }
            let payload = &self.buf[self.pos + CHUNK_HEADER..end];
            self.pos = end;
            let chunk_end = self.block_at + end as u64;
            match kind {
                FULL | FIRST => {
                    self.recovering = false;
                    let dropped = self.partial.take().map(|(start, _)| Item::Corrupt {
                        offset: start,
                        resumed: at,
                        why: "a record whose last chunk never came",
                    });
                    let item = if kind == FULL {
                        Some(Item::Record { start: at, end: chunk_end, data: payload.to_vec() })
                    } else {
                        self.partial = Some((at, payload.to_vec()));
                        None
                    };
                    match (dropped, item) {
                        (Some(d), item) => {
                            self.queued = item;
                            return Ok(Some(d));
                        }
                        (None, Some(item)) => return Ok(Some(item)),
                        (None, None) => {}
                    }
                }
                MIDDLE | LAST => match self.partial.as_mut() {
                    Some((_, data)) => {
                        data.extend_from_slice(payload);
                        if kind == LAST {
                            let (start, data) = self.partial.take().expect("matched Some");
                            return Ok(Some(Item::Record { start, end: chunk_end, data }));
                        }
                    }
                    None if self.recovering => {}
                    None => {
                        return Ok(Some(Item::Corrupt {
                            offset: at,
                            resumed: chunk_end,
                            why: "a chunk that continues no record",
                        }));
                    }
                },
                _ => return Ok(Some(self.corrupt(at, "an unknown chunk type"))),
            }
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A `.wandb` file of `records` as wandb's writer lays them out.
    pub fn write(records: &[Vec<u8>]) -> Vec<u8> {
        let mut out = b":W&B".to_vec();
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.push(VERSION);
        for data in records {
            let mut rest: &[u8] = data;
            let mut first = true;
            loop {
                let left = BLOCK - out.len() % BLOCK;
                if left < CHUNK_HEADER {
                    out.extend(std::iter::repeat_n(0, left));
                    continue;
                }
                let take = rest.len().min(left - CHUNK_HEADER);
                let last = take == rest.len();
                let kind = match (first, last) {
                    (true, true) => FULL,
                    (true, false) => FIRST,
                    (false, false) => MIDDLE,
                    (false, true) => LAST,
                };
                let mut typed = vec![kind];
                typed.extend_from_slice(&rest[..take]);
                out.extend_from_slice(&crc32fast::hash(&typed).to_le_bytes());
                out.extend_from_slice(&(take as u16).to_le_bytes());
                out.extend_from_slice(&typed);
                rest = &rest[take..];
                first = false;
                if last {
                    break;
                }
            }
        }
        out
    }

    fn items(bytes: &[u8]) -> Vec<Item> {
        let mut r = Reader::new(bytes);
        let mut out = Vec::new();
        while let Some(item) = r.next_item().unwrap() {
            out.push(item);
        }
        out
    }

    fn datas(items: &[Item]) -> Vec<&[u8]> {
        items.iter().filter_map(|i| if let Item::Record { data, .. } = i { Some(&data[..]) } else { None }).collect()
    }

    #[test]
    fn the_header_is_checked() {
        assert_eq!(check_header(&write(&[])), Ok(()));
        assert!(check_header(b"PK\x03\x04abc").unwrap_err().contains("no ':W&B' header"));
        assert!(check_header(b":W&B\x00\x00\x00").unwrap_err().contains("magic 0x0000"));
        assert!(check_header(b":W&B\xe1\xbe\x07").unwrap_err().contains("version 7"));
        assert!(check_header(b":W&").is_err());
    }

    #[test]
    fn records_come_back_whole_across_blocks() {
        let records: Vec<Vec<u8>> =
            vec![b"one".to_vec(), vec![7; 40_000], vec![9; 32_761], b"".to_vec(), vec![3; 100_000], b"end".to_vec()];
        let bytes = write(&records);
        let got = items(&bytes);
        assert_eq!(datas(&got), records.iter().map(|r| &r[..]).collect::<Vec<_>>());
        let Item::Record { start, end, .. } = &got[0] else { panic!() };
        assert_eq!((*start, *end), (7, 17));
        let Item::Record { end, .. } = got.last().unwrap() else { panic!() };
        assert_eq!(*end, bytes.len() as u64);
    }

    #[test]
    fn a_cut_short_file_keeps_its_complete_records() {
        let records = vec![b"one".to_vec(), vec![7; 40_000], b"two".to_vec()];
        let bytes = write(&records);
        // Inside the long record's second chunk.
        let got = items(&bytes[..35_000]);
        assert_eq!(datas(&got), vec![&b"one"[..]]);
        assert_eq!(got.last(), Some(&Item::Torn { offset: 17 }));
        // Inside the last chunk's header.
        let got = items(&bytes[..bytes.len() - 8]);
        assert_eq!(datas(&got).len(), 2);
        assert!(matches!(got.last(), Some(Item::Torn { .. })));
        // Only the file header, or nothing after the last record.
        assert_eq!(items(&bytes[..FILE_HEADER]), vec![]);
        assert_eq!(datas(&items(&bytes)).len(), 3);
    }

    #[test]
    fn a_crc_mismatch_is_said_and_reading_goes_on_at_the_next_block() {
        let mut records: Vec<Vec<u8>> = (0..3000).map(|i| format!("record {i}").into_bytes()).collect();
        records.push(b"last".to_vec());
        let mut bytes = write(&records);
        bytes[7 + 7] ^= 0xff;
        let got = items(&bytes);
        assert_eq!(got[0], Item::Corrupt { offset: 7, resumed: BLOCK as u64, why: "CRC mismatch" });
        let kept = datas(&got);
        assert!(kept.len() > 1000 && kept.len() < 3001, "{}", kept.len());
        assert_eq!(kept.last(), Some(&&b"last"[..]));
        // What the next block opens with, the rest of a record cut by the
        // skip, is passed over quietly.
        assert_eq!(got.iter().filter(|i| matches!(i, Item::Corrupt { .. })).count(), 1);
    }

    #[test]
    fn a_chunk_out_of_place_or_of_no_known_kind_is_corrupt() {
        let mut bytes = write(&[b"ab".to_vec(), b"cd".to_vec()]);
        bytes[7 + 6] = 9;
        let crc = crc32fast::hash(&[9, b'a', b'b']);
        bytes[7..11].copy_from_slice(&crc.to_le_bytes());
        let got = items(&bytes);
        assert_eq!(got, vec![Item::Corrupt { offset: 7, resumed: BLOCK as u64, why: "an unknown chunk type" }]);
        let mut bytes = write(&[b"ab".to_vec(), b"cd".to_vec()]);
        bytes[7 + 6] = LAST;
        bytes[7..11].copy_from_slice(&crc32fast::hash(&[LAST, b'a', b'b']).to_le_bytes());
        let got = items(&bytes);
        assert_eq!(got[0], Item::Corrupt { offset: 7, resumed: 16, why: "a chunk that continues no record" });
        assert_eq!(datas(&got), vec![&b"cd"[..]]);
    }
}
