//! A small Apache Parquet writer for flat tables, used by `labmate export --format parquet`.
//!
//! This module owns the whole Parquet encoding of an export: the file layout, the Thrift compact
//! protocol for page headers and the footer, and the value encodings. It exists instead of the
//! `parquet`/`arrow` crates because those cost minutes of compile time on CI, while exports need
//! only a small subset of the format, one that every reader supports:
//!
//! - one file; flat schema: a root group and one `OPTIONAL` leaf per column (max definition level
//!   1, no repetition levels);
//! - physical types `INT64`, `DOUBLE`, `BOOLEAN`, and `BYTE_ARRAY` annotated as a string (logical
//!   type `STRING` plus converted type `UTF8`, so old and new readers agree);
//! - row groups of at most [`ROW_GROUP_ROWS`] rows (also cut so no page passes [`MAX_PAGE_BYTES`]),
//!   exactly one v1 `DATA_PAGE` per column chunk, no dictionary pages;
//! - `PLAIN` values, definition levels in the RLE/bit-packed hybrid (bit width 1, with the 4-byte
//!   length prefix that v1 data pages require), codec `UNCOMPRESSED`;
//! - column chunk statistics: `null_count` always; `min_value`/`max_value` under `TYPE_ORDER`
//!   (declared in `column_orders`, without which they mean nothing); for doubles `nan_count`, with
//!   NaN left out of min/max and zeros written as -0.0 (min) / +0.0 (max), as `parquet.thrift`
//!   requires.
//!
//! NaN and ±Inf are stored as their IEEE bits. A table with no rows gets no row groups: the footer
//! alone carries the schema, which readers accept and which avoids zero-value pages. Tables that
//! common readers cannot open (no columns, duplicate names) are refused rather than written.
//!
//! Tests check the encodings byte by byte; `pyarrow_reads_what_we_write` checks whole files with
//! pyarrow, an independent reader, when `LABMATE_PYARROW` names a Python that has it.

use std::io::{self, Write};
use std::ops::Range;
use std::path::Path;

/// One column's values; `None` is a null.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    Int64(Vec<Option<i64>>),
    Double(Vec<Option<f64>>),
    Utf8(Vec<Option<String>>),
    Bool(Vec<Option<bool>>),
}

impl Column {
    /// Number of values, nulls included.
    pub fn len(&self) -> usize {
        match self {
            Column::Int64(v) => v.len(),
            Column::Double(v) => v.len(),
            Column::Utf8(v) => v.len(),
            Column::Bool(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A flat table: named columns, all of the same length.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub columns: Vec<(String, Column)>,
}

/// Most rows in one row group. Readers load a row group's column chunk at once, so this bounds
/// their memory as well as ours (we build one page in memory before writing it).
pub const ROW_GROUP_ROWS: usize = 1_000_000;

/// Most bytes in one page: page sizes are `i32` in the page header, so long strings must cut a row
/// group early. 1 GiB leaves room below `i32::MAX` for the definition levels.
pub const MAX_PAGE_BYTES: usize = 1 << 30;

/// What `created_by` says, in the "<app> version <version>" form the spec asks for (readers parse
/// it to decide which known writer bugs to work around; an unknown app gets none).
const CREATED_BY: &str = concat!("labmate version ", env!("CARGO_PKG_VERSION"));

/// Statistics min/max are dropped for a string column chunk whose min or max is longer than this:
/// they live in the footer, and a huge footer costs every reader more than the bound saves.
const MAX_STAT_BYTES: usize = 1024;

// Parquet enum values (parquet.thrift).
const TYPE_BOOLEAN: i32 = 0;
const TYPE_INT64: i32 = 2;
const TYPE_DOUBLE: i32 = 5;
const TYPE_BYTE_ARRAY: i32 = 6;
const CONVERTED_UTF8: i32 = 0;
const REPETITION_OPTIONAL: i32 = 1;
const ENCODING_PLAIN: i32 = 0;
const ENCODING_RLE: i32 = 3;
const CODEC_UNCOMPRESSED: i32 = 0;
const PAGE_DATA: i32 = 0;

const MAGIC: &[u8; 4] = b"PAR1";

/// Writes `table` as a Parquet file to `out`.
///
/// Fails with `InvalidInput`, before writing anything, when the table has no columns, two columns
/// share a name, the columns differ in length, or one string is too long for a page.
pub fn write(table: &Table, out: &mut impl Write) -> io::Result<()> {
    let num_rows = validate(table)?;
    let groups = row_group_ranges(table, num_rows, ROW_GROUP_ROWS, MAX_PAGE_BYTES)?;
    let mut out = Counting { inner: out, pos: 0 };
    out.write_all(MAGIC)?;
    let mut row_groups = Vec::with_capacity(groups.len());
    for range in groups {
        let mut chunks = Vec::with_capacity(table.columns.len());
        for (name, column) in &table.columns {
            let page = encode_page(column, range.clone());
            let header = page_header(range.len(), page.data.len())?;
            chunks.push(ChunkMeta {
                name,
                physical_type: physical_type(column),
                offset: out.pos,
                size: (header.len() + page.data.len()) as u64,
                num_values: range.len() as u64,
                stats: page.stats,
            });
            out.write_all(&header)?;
            out.write_all(&page.data)?;
        }
        row_groups.push(RowGroupMeta { num_rows: range.len() as u64, chunks });
    }
    let footer = file_metadata(table, num_rows as u64, &row_groups);
    // The footer length is a 4-byte field; a footer that big would need millions of columns.
    let footer_len = u32::try_from(footer.len()).map_err(|_| invalid("parquet: footer over 4 GiB"))?;
    out.write_all(&footer)?;
    out.write_all(&footer_len.to_le_bytes())?;
    out.write_all(MAGIC)?;
    out.flush()
}

/// Writes `table` to a new file at `path` (replacing any file there). A failed write removes the
/// partial file, so no truncated export is left looking like a result.
pub fn write_file(table: &Table, path: &Path) -> io::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut buf = io::BufWriter::new(file);
    let result = write(table, &mut buf).and_then(|()| buf.into_inner().map_err(|e| e.into_error())?.sync_all());
    if result.is_err() {
        let _ = std::fs::remove_file(path);
    }
    result
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

/// Checks what readers would trip on, returning the row count.
fn validate(table: &Table) -> io::Result<usize> {
    // A footer-only file with no leaf column is valid Parquet, but DuckDB refuses to open it.
    let Some((_, first)) = table.columns.first() else {
        return Err(invalid("parquet: a table needs at least one column"));
    };
    let num_rows = first.len();
    let mut names = std::collections::HashSet::new();
    for (name, column) in &table.columns {
        if column.len() != num_rows {
            return Err(invalid(format!("parquet: column {name:?} has {} values, expected {num_rows}", column.len())));
        }
        // pyarrow's read_table fails on duplicate names (and ParquetFile.read drops one column).
        if !names.insert(name.as_str()) {
            return Err(invalid(format!("parquet: two columns are named {name:?}")));
        }
    }
    Ok(num_rows)
}

/// Splits `0..num_rows` into row groups of at most `max_rows` rows, cutting early where a string
/// column's page would pass `max_bytes` (its PLAIN size: 4-byte length plus bytes per value).
fn row_group_ranges(
    table: &Table,
    num_rows: usize,
    max_rows: usize,
    max_bytes: usize,
) -> io::Result<Vec<Range<usize>>> {
    let strings: Vec<&[Option<String>]> = table
        .columns
        .iter()
        .filter_map(|(_, c)| match c {
            Column::Utf8(v) => Some(v.as_slice()),
            _ => None,
        })
        .collect();
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut bytes = vec![0usize; strings.len()];
    for row in 0..num_rows {
        let mut cut = row - start == max_rows;
        for (c, column) in strings.iter().enumerate() {
            let size = column[row].as_ref().map_or(0, |s| 4 + s.len());
            if size > max_bytes {
                return Err(invalid(format!("parquet: string of {} bytes in row {row} is too long", size - 4)));
            }
            cut |= bytes[c] + size > max_bytes;
        }
        if cut {
            ranges.push(start..row);
            start = row;
            bytes.fill(0);
        }
        for (c, column) in strings.iter().enumerate() {
            bytes[c] += column[row].as_ref().map_or(0, |s| 4 + s.len());
        }
    }
    if start < num_rows {
        ranges.push(start..num_rows);
    }
    Ok(ranges)
}

/// A `Write` that knows how many bytes went through it: column chunk metadata records offsets.
struct Counting<'a, W: Write> {
    inner: &'a mut W,
    pos: u64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

// ---------------------------------------------------------------------------------------------
// Pages

/// The body of one v1 data page (definition levels, then values) and its chunk's statistics.
struct Page {
    data: Vec<u8>,
    stats: Stats,
}

/// Column chunk statistics, min/max already PLAIN-encoded (strings without length prefix).
#[derive(Debug, Default, PartialEq)]
struct Stats {
    null_count: u64,
    min: Option<Vec<u8>>,
    max: Option<Vec<u8>>,
    nan_count: Option<u64>,
}

fn physical_type(column: &Column) -> i32 {
    match column {
        Column::Int64(_) => TYPE_INT64,
        Column::Double(_) => TYPE_DOUBLE,
        Column::Utf8(_) => TYPE_BYTE_ARRAY,
        Column::Bool(_) => TYPE_BOOLEAN,
    }
}

fn encode_page(column: &Column, rows: Range<usize>) -> Page {
    match column {
        Column::Int64(v) => int64_page(&v[rows]),
        Column::Double(v) => double_page(&v[rows]),
        Column::Utf8(v) => utf8_page(&v[rows]),
        Column::Bool(v) => bool_page(&v[rows]),
    }
}

/// Starts a page body with its definition levels: 4-byte little-endian length, then the hybrid.
fn page_with_levels<T>(values: &[Option<T>], value_bytes: usize) -> Vec<u8> {
    let levels = definition_levels(values);
    let mut data = Vec::with_capacity(4 + levels.len() + value_bytes);
    // Levels of at most ROW_GROUP_ROWS values take far less than 4 GiB.
    data.extend_from_slice(&(levels.len() as u32).to_le_bytes());
    data.extend_from_slice(&levels);
    data
}

fn null_count<T>(values: &[Option<T>]) -> u64 {
    values.iter().filter(|v| v.is_none()).count() as u64
}

fn int64_page(values: &[Option<i64>]) -> Page {
    let mut data = page_with_levels(values, values.len() * 8);
    let mut range: Option<(i64, i64)> = None;
    for &v in values.iter().flatten() {
        data.extend_from_slice(&v.to_le_bytes());
        range = Some(range.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))));
    }
    let stats = Stats {
        null_count: null_count(values),
        min: range.map(|(lo, _)| lo.to_le_bytes().to_vec()),
        max: range.map(|(_, hi)| hi.to_le_bytes().to_vec()),
        nan_count: None,
    };
    Page { data, stats }
}

fn double_page(values: &[Option<f64>]) -> Page {
    let mut data = page_with_levels(values, values.len() * 8);
    let mut range: Option<(f64, f64)> = None;
    let mut nans = 0u64;
    for &v in values.iter().flatten() {
        data.extend_from_slice(&v.to_le_bytes());
        // NaN has no place in an order; the spec says to count it and leave it out of min/max.
        if v.is_nan() {
            nans += 1;
        } else {
            range = Some(range.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))));
        }
    }
    // -0.0 and +0.0 compare equal, so which one min/max found is arbitrary; the spec fixes the
    // min to -0.0 and the max to +0.0 so both zeros fall within the bounds.
    let range = range.map(|(lo, hi)| (if lo == 0.0 { -0.0 } else { lo }, if hi == 0.0 { 0.0 } else { hi }));
    let stats = Stats {
        null_count: null_count(values),
        min: range.map(|(lo, _)| lo.to_le_bytes().to_vec()),
        max: range.map(|(_, hi)| hi.to_le_bytes().to_vec()),
        nan_count: Some(nans),
    };
    Page { data, stats }
}

fn utf8_page(values: &[Option<String>]) -> Page {
    let bytes: usize = values.iter().flatten().map(|s| 4 + s.len()).sum();
    let mut data = page_with_levels(values, bytes);
    let mut range: Option<(&str, &str)> = None;
    for v in values.iter().flatten().map(String::as_str) {
        // row_group_ranges bounded every string by MAX_PAGE_BYTES, so the length fits.
        data.extend_from_slice(&(v.len() as u32).to_le_bytes());
        data.extend_from_slice(v.as_bytes());
        // `str` orders by its UTF-8 bytes, unsigned: exactly the STRING column order.
        range = Some(range.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))));
    }
    let range = range.filter(|(lo, hi)| lo.len() <= MAX_STAT_BYTES && hi.len() <= MAX_STAT_BYTES);
    let stats = Stats {
        null_count: null_count(values),
        min: range.map(|(lo, _)| lo.as_bytes().to_vec()),
        max: range.map(|(_, hi)| hi.as_bytes().to_vec()),
        nan_count: None,
    };
    Page { data, stats }
}

fn bool_page(values: &[Option<bool>]) -> Page {
    let present: Vec<bool> = values.iter().flatten().copied().collect();
    let mut data = page_with_levels(values, present.len().div_ceil(8));
    data.extend(pack_bits(&present));
    // PLAIN of a single boolean is one bit-packed byte: 0 or 1.
    let stats = Stats {
        null_count: null_count(values),
        min: (!present.is_empty()).then(|| vec![u8::from(present.iter().all(|&b| b))]),
        max: (!present.is_empty()).then(|| vec![u8::from(present.iter().any(|&b| b))]),
        nan_count: None,
    };
    Page { data, stats }
}

/// Packs booleans one bit each, least significant bit first, the last byte padded with zeros
/// (the PLAIN boolean layout, and the body of a bit-packed run of bit width 1).
fn pack_bits(bits: &[bool]) -> Vec<u8> {
    bits.chunks(8).map(|group| group.iter().enumerate().fold(0u8, |byte, (i, &b)| byte | (u8::from(b) << i))).collect()
}

/// Definition levels (1 = present, 0 = null) in the RLE/bit-packed hybrid, bit width 1, without
/// the length prefix. Values go by groups of 8: runs of uniform groups become RLE runs (a column
/// without nulls is then 2 or so bytes), mixed groups become bit-packed runs. Only the final
/// group may be short; as an RLE run it carries its exact length, as a bit-packed run it is
/// zero-padded, which readers allow since they stop at the page's value count.
fn definition_levels<T>(values: &[Option<T>]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rle: Option<(bool, usize)> = None;
    let mut packed: Vec<u8> = Vec::new();
    for group in values.chunks(8) {
        let bits = group.iter().enumerate().fold(0u8, |byte, (i, v)| byte | (u8::from(v.is_some()) << i));
        let all_present = (u16::MAX >> (16 - group.len())) as u8; // one bit per value in the group
        if bits == 0 || bits == all_present {
            let value = bits != 0;
            flush_packed(&mut out, &mut packed);
            match &mut rle {
                Some((v, len)) if *v == value => *len += group.len(),
                _ => {
                    flush_rle(&mut out, rle.take());
                    rle = Some((value, group.len()));
                }
            }
        } else {
            flush_rle(&mut out, rle.take());
            packed.push(bits);
        }
    }
    flush_rle(&mut out, rle);
    flush_packed(&mut out, &mut packed);
    out
}

fn flush_rle(out: &mut Vec<u8>, run: Option<(bool, usize)>) {
    if let Some((value, len)) = run {
        put_varint(out, (len as u64) << 1);
        // The repeated value takes ceil(bit width / 8) = 1 byte.
        out.push(u8::from(value));
    }
}

fn flush_packed(out: &mut Vec<u8>, packed: &mut Vec<u8>) {
    if !packed.is_empty() {
        // The header counts groups of 8 values; with bit width 1 a group is one byte.
        put_varint(out, ((packed.len() as u64) << 1) | 1);
        out.append(packed);
    }
}

fn page_header(num_values: usize, size: usize) -> io::Result<Vec<u8>> {
    let size = i32::try_from(size).map_err(|_| invalid("parquet: page over 2 GiB"))?;
    let mut t = Thrift::default();
    t.i32_field(1, PAGE_DATA);
    t.i32_field(2, size); // uncompressed_page_size
    t.i32_field(3, size); // compressed_page_size: the same, as nothing is compressed
    t.struct_field(5); // data_page_header
    t.i32_field(1, num_values as i32); // at most ROW_GROUP_ROWS
    t.i32_field(2, ENCODING_PLAIN);
    t.i32_field(3, ENCODING_RLE); // definition levels
    t.i32_field(4, ENCODING_RLE); // repetition levels: none here, but the field is required
    t.end_struct();
    t.end_struct();
    Ok(t.buf)
}

// ---------------------------------------------------------------------------------------------
// Footer

struct ChunkMeta<'a> {
    name: &'a str,
    physical_type: i32,
    offset: u64,
    size: u64,
    num_values: u64,
    stats: Stats,
}

struct RowGroupMeta<'a> {
    num_rows: u64,
    chunks: Vec<ChunkMeta<'a>>,
}

/// The Thrift `FileMetaData` that ends the file.
fn file_metadata(table: &Table, num_rows: u64, row_groups: &[RowGroupMeta]) -> Vec<u8> {
    let mut t = Thrift::default();
    // "1" for the widest reader support, as parquet.thrift advises.
    t.i32_field(1, 1);

    t.list_field(2, CT_STRUCT, table.columns.len() + 1);
    t.begin_struct(); // the root group
    t.binary_field(4, b"schema");
    t.i32_field(5, table.columns.len() as i32);
    t.end_struct();
    for (name, column) in &table.columns {
        t.begin_struct();
        t.i32_field(1, physical_type(column));
        t.i32_field(3, REPETITION_OPTIONAL);
        t.binary_field(4, name.as_bytes());
        if let Column::Utf8(_) = column {
            t.i32_field(6, CONVERTED_UTF8);
            t.struct_field(10); // logicalType: the union's STRING member, an empty struct
            t.struct_field(1);
            t.end_struct();
            t.end_struct();
        }
        t.end_struct();
    }

    t.i64_field(3, num_rows as i64);

    t.list_field(4, CT_STRUCT, row_groups.len());
    for group in row_groups {
        t.begin_struct();
        t.list_field(1, CT_STRUCT, group.chunks.len());
        for chunk in &group.chunks {
            column_chunk(&mut t, chunk);
        }
        let bytes: u64 = group.chunks.iter().map(|c| c.size).sum();
        t.i64_field(2, bytes as i64); // total_byte_size (uncompressed)
        t.i64_field(3, group.num_rows as i64);
        if let Some(first) = group.chunks.first() {
            t.i64_field(5, first.offset as i64); // file_offset
        }
        t.i64_field(6, bytes as i64); // total_compressed_size
        t.end_struct();
    }

    t.binary_field(6, CREATED_BY.as_bytes());

    // min_value/max_value are only defined under a declared column order.
    t.list_field(7, CT_STRUCT, table.columns.len());
    for _ in &table.columns {
        t.begin_struct();
        t.struct_field(1); // TYPE_ORDER: an empty struct
        t.end_struct();
        t.end_struct();
    }
    t.end_struct();
    t.buf
}

fn column_chunk(t: &mut Thrift, chunk: &ChunkMeta) {
    t.begin_struct();
    // Deprecated; parquet.thrift says to write 0 when no metadata sits outside the footer.
    t.i64_field(2, 0);
    t.struct_field(3); // meta_data
    t.i32_field(1, chunk.physical_type);
    t.list_field(2, CT_I32, 2);
    t.i32_element(ENCODING_PLAIN);
    t.i32_element(ENCODING_RLE);
    t.list_field(3, CT_BINARY, 1);
    t.binary_element(chunk.name.as_bytes());
    t.i32_field(4, CODEC_UNCOMPRESSED);
    t.i64_field(5, chunk.num_values as i64);
    t.i64_field(6, chunk.size as i64); // total_uncompressed_size, page header included
    t.i64_field(7, chunk.size as i64); // total_compressed_size
    t.i64_field(9, chunk.offset as i64); // data_page_offset
    let s = &chunk.stats;
    t.struct_field(12);
    t.i64_field(3, s.null_count as i64);
    if let Some(max) = &s.max {
        t.binary_field(5, max); // max_value
    }
    if let Some(min) = &s.min {
        t.binary_field(6, min); // min_value
    }
    if let Some(nans) = s.nan_count {
        t.i64_field(9, nans as i64);
    }
    t.end_struct();
    t.end_struct(); // meta_data
    t.end_struct(); // ColumnChunk
}

// ---------------------------------------------------------------------------------------------
// Thrift compact protocol: only the writing side, and only the types Parquet metadata needs.

const CT_BOOL_TRUE: u8 = 1;
const CT_BOOL_FALSE: u8 = 2;
const CT_I32: u8 = 5;
const CT_I64: u8 = 6;
const CT_BINARY: u8 = 8;
const CT_LIST: u8 = 9;
const CT_STRUCT: u8 = 12;

/// A compact-protocol encoder. Field headers encode the id as a delta from the previous field's
/// id in the same struct, so nested structs keep their enclosing struct's last id on a stack.
#[derive(Default)]
struct Thrift {
    buf: Vec<u8>,
    last_id: i16,
    stack: Vec<i16>,
}

impl Thrift {
    fn field_header(&mut self, id: i16, ty: u8) {
        let delta = id - self.last_id;
        if (1..=15).contains(&delta) {
            self.buf.push(((delta as u8) << 4) | ty);
        } else {
            self.buf.push(ty);
            put_varint(&mut self.buf, zigzag(i64::from(id)));
        }
        self.last_id = id;
    }

    fn i32_field(&mut self, id: i16, v: i32) {
        self.field_header(id, CT_I32);
        self.i32_element(v);
    }

    fn i64_field(&mut self, id: i16, v: i64) {
        self.field_header(id, CT_I64);
        put_varint(&mut self.buf, zigzag(v));
    }

    fn binary_field(&mut self, id: i16, v: &[u8]) {
        self.field_header(id, CT_BINARY);
        self.binary_element(v);
    }

    #[cfg_attr(not(test), allow(dead_code))]
    fn bool_field(&mut self, id: i16, v: bool) {
        // A boolean field's value lives in its header's type nibble.
        self.field_header(id, if v { CT_BOOL_TRUE } else { CT_BOOL_FALSE });
    }

    /// Starts a struct-valued field; close it with [`Thrift::end_struct`].
    fn struct_field(&mut self, id: i16) {
        self.field_header(id, CT_STRUCT);
        self.begin_struct();
    }

    /// Starts a struct as a list element (or the top-level struct).
    fn begin_struct(&mut self) {
        self.stack.push(self.last_id);
        self.last_id = 0;
    }

    fn end_struct(&mut self) {
        self.buf.push(0); // stop field
        self.last_id = self.stack.pop().unwrap_or(0);
    }

    /// A list field header; the caller then writes exactly `len` elements of type `elem`.
    fn list_field(&mut self, id: i16, elem: u8, len: usize) {
        self.field_header(id, CT_LIST);
        if len < 15 {
            self.buf.push(((len as u8) << 4) | elem);
        } else {
            self.buf.push(0xF0 | elem);
            put_varint(&mut self.buf, len as u64);
        }
    }

    fn i32_element(&mut self, v: i32) {
        put_varint(&mut self.buf, zigzag(i64::from(v)));
    }

    fn binary_element(&mut self, v: &[u8]) {
        put_varint(&mut self.buf, v.len() as u64);
        self.buf.extend_from_slice(v);
    }
}

/// Folds signed integers onto unsigned ones so small magnitudes stay short as varints. Works for
/// i16 and i32 too: for them the i64 result equals their own width's zigzag.
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Unsigned LEB128: 7 bits a byte, low bits first, the high bit set on all but the last byte.
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7F) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        out
    }

    #[test]
    fn varints() {
        assert_eq!(varint(0), [0x00]);
        assert_eq!(varint(1), [0x01]);
        assert_eq!(varint(127), [0x7F]);
        assert_eq!(varint(128), [0x80, 0x01]);
        assert_eq!(varint(300), [0xAC, 0x02]);
        // The example in the Thrift compact protocol spec.
        assert_eq!(varint(50399), [0xDF, 0x89, 0x03]);
        assert_eq!(varint(u64::MAX), [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]);
    }

    #[test]
    fn zigzags() {
        assert_eq!(zigzag(0), 0);
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
        assert_eq!(zigzag(-2), 3);
        assert_eq!(zigzag(2), 4);
        assert_eq!(zigzag(i64::MAX), u64::MAX - 1);
        assert_eq!(zigzag(i64::MIN), u64::MAX);
        // The i32 zigzag of i32::MIN is u32::MAX; widening first must not change that.
        assert_eq!(zigzag(i64::from(i32::MIN)), u64::from(u32::MAX));
    }

    #[test]
    fn field_headers_short_and_long_form() {
        let mut t = Thrift::default();
        t.i32_field(1, 5); // delta 1: short form 0x15, value zigzag(5) = 10
        t.i32_field(16, -1); // delta 15: still short, 0xF5, value 1
        t.i64_field(32, 3); // delta 16: long form: type 0x06, id zigzag(32) = 64, value 6
        t.i32_field(2, 0); // going backwards: long form, id zigzag(2) = 4
        t.bool_field(3, true); // delta 1, type BOOLEAN_TRUE, no value byte
        t.bool_field(4, false); // delta 1, type BOOLEAN_FALSE
        t.i32_field(300, 1); // long form, id zigzag(300) = 600 = [0xD8, 0x04]
        t.end_struct();
        assert_eq!(
            t.buf,
            [0x15, 0x0A, 0xF5, 0x01, 0x06, 0x40, 0x06, 0x05, 0x04, 0x00, 0x11, 0x12, 0x05, 0xD8, 0x04, 0x02, 0x00]
        );
    }

    #[test]
    fn nested_structs_restart_field_deltas() {
        let mut t = Thrift::default();
        t.i32_field(5, 1); // 0x55 0x02
        t.struct_field(10); // delta 5: 0x5C
        t.i32_field(1, 1); // inner ids start over: 0x15 0x02
        t.end_struct(); // 0x00
        t.i32_field(11, 2); // delta from the outer 10: 0x15 0x04
        t.end_struct();
        assert_eq!(t.buf, [0x55, 0x02, 0x5C, 0x15, 0x02, 0x00, 0x15, 0x04, 0x00]);
    }

    #[test]
    fn lists_short_and_long_form() {
        let mut t = Thrift::default();
        t.list_field(1, CT_I32, 2); // 0x19, then header 0x25
        t.i32_element(0);
        t.i32_element(3);
        t.list_field(2, CT_BINARY, 15); // 0x19, then 0xF8 and varint 15
        for _ in 0..15 {
            t.binary_element(b"a");
        }
        t.list_field(3, CT_STRUCT, 0); // 0x19, header 0x0C
        t.end_struct();
        let mut expected = vec![0x19, 0x25, 0x00, 0x06, 0x19, 0xF8, 0x0F];
        for _ in 0..15 {
            expected.extend_from_slice(&[0x01, b'a']);
        }
        expected.extend_from_slice(&[0x19, 0x0C, 0x00]);
        assert_eq!(t.buf, expected);
    }

    #[test]
    fn list_of_structs() {
        let mut t = Thrift::default();
        t.i32_field(6, 9); // 0x65 0x12
        t.list_field(7, CT_STRUCT, 2); // 0x19 0x2C
        for _ in 0..2 {
            t.begin_struct();
            t.struct_field(1); // 0x1C
            t.end_struct(); // 0x00
            t.end_struct(); // 0x00
        }
        t.i64_field(8, 1); // the outer struct resumes after the list's id 7: delta 1, 0x16 0x02
        t.end_struct();
        assert_eq!(t.buf, [0x65, 0x12, 0x19, 0x2C, 0x1C, 0x00, 0x00, 0x1C, 0x00, 0x00, 0x16, 0x02, 0x00]);
    }

    #[test]
    fn bit_packing_is_lsb_first() {
        assert_eq!(pack_bits(&[]), Vec::<u8>::new());
        assert_eq!(pack_bits(&[true]), [0x01]);
        assert_eq!(pack_bits(&[false, true, true, false, false, false, false, true]), [0b1000_0110]);
        assert_eq!(pack_bits(&[true; 9]), [0xFF, 0x01]);
    }

    #[test]
    fn definition_level_runs() {
        // Nothing at all: no runs.
        assert_eq!(definition_levels::<i64>(&[]), Vec::<u8>::new());
        // No nulls: one RLE run of 10 ones, header 10 << 1 = 20.
        assert_eq!(definition_levels(&[Some(1); 10]), [20, 1]);
        // All null: one RLE run of 3 zeros.
        assert_eq!(definition_levels::<i64>(&[None; 3]), [6, 0]);
        // Mixed short group: one bit-packed run of 1 group, header (1 << 1) | 1, padded byte.
        assert_eq!(definition_levels(&[Some(1), None, Some(1)]), [3, 0b101]);
        // 8 present, 8 mixed, 8 mixed, 16 null, then 2 present: RLE, bit-packed x2, RLE, RLE.
        let mut v = vec![Some(1); 8];
        v.extend([None, Some(1), None, None, None, None, None, None]);
        v.extend([Some(1), Some(1), None, None, None, None, None, Some(1)]);
        v.extend([None; 16]);
        v.extend([Some(1); 2]);
        assert_eq!(definition_levels(&v), [16, 1, 5, 0b0000_0010, 0b1000_0011, 32, 0, 4, 1]);
        // A run long enough for a two-byte varint header: 1000 << 1 = 2000 = [0xD0, 0x0F].
        assert_eq!(definition_levels(&[Some(1); 1000]), [0xD0, 0x0F, 1]);
    }

    #[test]
    fn page_bodies() {
        let page = int64_page(&[Some(-2), None, Some(7)]);
        let mut expected = vec![2, 0, 0, 0, 3, 0b101];
        expected.extend((-2i64).to_le_bytes());
        expected.extend(7i64.to_le_bytes());
        assert_eq!(page.data, expected);
        assert_eq!(
            page.stats,
            Stats {
                null_count: 1,
                min: Some((-2i64).to_le_bytes().to_vec()),
                max: Some(7i64.to_le_bytes().to_vec()),
                nan_count: None
            }
        );

        let page = utf8_page(&[Some("é".into()), Some(String::new()), None]);
        assert_eq!(page.data, [2, 0, 0, 0, 3, 0b011, 2, 0, 0, 0, 0xC3, 0xA9, 0, 0, 0, 0]);
        assert_eq!(page.stats.min.as_deref(), Some(&b""[..]));
        assert_eq!(page.stats.max.as_deref(), Some("é".as_bytes()));

        let page = bool_page(&[Some(true), None, Some(false), Some(true)]);
        assert_eq!(page.data, [2, 0, 0, 0, 3, 0b1101, 0b101]);
        assert_eq!((page.stats.min, page.stats.max), (Some(vec![0]), Some(vec![1])));
    }

    #[test]
    fn double_stats_skip_nan_and_fix_zero_signs() {
        let s = double_page(&[Some(f64::NAN), Some(0.0), None, Some(f64::INFINITY), Some(-3.5)]).stats;
        assert_eq!(s.null_count, 1);
        assert_eq!(s.nan_count, Some(1));
        assert_eq!(s.min, Some((-3.5f64).to_le_bytes().to_vec()));
        assert_eq!(s.max, Some(f64::INFINITY.to_le_bytes().to_vec()));

        let s = double_page(&[Some(0.0), Some(0.0)]).stats;
        assert_eq!(s.min, Some((-0.0f64).to_le_bytes().to_vec()));
        assert_eq!(s.max, Some(0.0f64.to_le_bytes().to_vec()));

        let s = double_page(&[Some(-0.0), Some(f64::NAN)]).stats;
        assert_eq!(s.max, Some(0.0f64.to_le_bytes().to_vec()));

        let s = double_page(&[Some(f64::NAN), None]).stats;
        assert_eq!((s.min, s.max, s.nan_count, s.null_count), (None, None, Some(1), 1));
    }

    #[test]
    fn long_strings_drop_min_max() {
        let s = utf8_page(&[Some("a".repeat(MAX_STAT_BYTES + 1)), Some("b".into())]).stats;
        assert_eq!((s.min, s.max, s.null_count), (None, None, 0));
    }

    #[test]
    fn row_groups_cut_by_rows_and_string_bytes() {
        let ints = Table { columns: vec![("x".into(), Column::Int64(vec![Some(1); 7]))] };
        assert_eq!(row_group_ranges(&ints, 7, 3, 100).unwrap(), [0..3, 3..6, 6..7]);
        assert_eq!(row_group_ranges(&ints, 6, 3, 100).unwrap(), [0..3, 3..6]);
        assert!(row_group_ranges(&ints, 0, 3, 100).unwrap().is_empty());

        // Each "abcd" costs 8 bytes; 20 bytes fit two of them.
        let strings = Table {
            columns: vec![
                ("x".into(), Column::Int64(vec![Some(1); 5])),
                (
                    "s".into(),
                    Column::Utf8(vec![Some("abcd".into()), Some("abcd".into()), None, Some("abcd".into()), None]),
                ),
            ],
        };
        assert_eq!(row_group_ranges(&strings, 5, 10, 20).unwrap(), [0..3, 3..5]);
        let err = row_group_ranges(&strings, 5, 10, 7).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn bad_tables_are_rejected_before_writing() {
        let unequal = vec![("a".into(), Column::Int64(vec![Some(1)])), ("b".into(), Column::Bool(vec![]))];
        let duplicate = vec![("a".into(), Column::Int64(vec![])), ("a".into(), Column::Bool(vec![]))];
        for columns in [unequal, duplicate, vec![]] {
            let mut out = Vec::new();
            let err = write(&Table { columns }, &mut out).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(out.is_empty());
        }
    }

    #[test]
    fn file_layout() {
        let table = Table {
            columns: vec![
                ("i".into(), Column::Int64(vec![Some(1), None])),
                ("s".into(), Column::Utf8(vec![None, Some("x".into())])),
            ],
        };
        let mut out = Vec::new();
        write(&table, &mut out).unwrap();
        assert_eq!(&out[..4], b"PAR1");
        assert_eq!(&out[out.len() - 4..], b"PAR1");
        let footer_len = u32::from_le_bytes(out[out.len() - 8..out.len() - 4].try_into().unwrap()) as usize;
        let footer = &out[out.len() - 8 - footer_len..out.len() - 8];
        // FileMetaData starts with version = 1, then the schema list of 3 structs.
        assert_eq!(&footer[..4], [0x15, 0x02, 0x19, 0x3C]);
        assert_eq!(footer.last(), Some(&0));
        // The first page header follows the magic: type DATA_PAGE (0).
        assert_eq!(&out[4..6], [0x15, 0x00]);
        let created_by = CREATED_BY.as_bytes();
        assert!(footer.windows(created_by.len()).any(|w| w == created_by));
    }

    /// Reads files written here with pyarrow, an independent implementation. Set
    /// `LABMATE_PYARROW` to a Python that has pyarrow installed; unset, the test is skipped.
    #[test]
    fn pyarrow_reads_what_we_write() {
        let Some(python) = std::env::var_os("LABMATE_PYARROW") else {
            eprintln!("skipping pyarrow_reads_what_we_write: LABMATE_PYARROW is not set");
            return;
        };
        let dir = tempfile::tempdir().unwrap();

        let small = dir.path().join("small.parquet");
        write_file(&small_table(), &small).unwrap();
        run_python(&python, &small_check_script(), &small);

        let empty = dir.path().join("empty.parquet");
        let mut table = small_table();
        for (_, column) in &mut table.columns {
            *column = match column {
                Column::Int64(_) => Column::Int64(vec![]),
                Column::Double(_) => Column::Double(vec![]),
                Column::Utf8(_) => Column::Utf8(vec![]),
                Column::Bool(_) => Column::Bool(vec![]),
            };
        }
        write_file(&table, &empty).unwrap();
        run_python(&python, EMPTY_CHECK, &empty);

        let big = dir.path().join("big.parquet");
        write_file(&big_table(BIG_ROWS), &big).unwrap();
        run_python(&python, BIG_CHECK, &big);
    }

    fn run_python(python: &std::ffi::OsStr, script: &str, file: &Path) {
        let output = std::process::Command::new(python).arg("-c").arg(script).arg(file).output().unwrap();
        assert!(
            output.status.success(),
            "pyarrow check failed on {}:\n{}\n{}",
            file.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn small_table() -> Table {
        Table {
            columns: vec![
                ("int".into(), Column::Int64(vec![Some(0), None, Some(i64::MIN), Some(i64::MAX), Some(-7), None])),
                (
                    "double".into(),
                    Column::Double(vec![
                        Some(f64::NAN),
                        Some(f64::INFINITY),
                        None,
                        Some(f64::NEG_INFINITY),
                        Some(-0.0),
                        Some(1.5e-300),
                    ]),
                ),
                (
                    "text".into(),
                    Column::Utf8(vec![
                        Some(String::new()),
                        Some("héllo wörld".into()),
                        Some("日本語 🚀".into()),
                        None,
                        Some("quote \" backslash \\ newline \n".into()),
                        Some("a".into()),
                    ]),
                ),
                ("flag".into(), Column::Bool(vec![Some(true), Some(false), None, Some(true), None, Some(false)])),
                // A column with no values at all: min/max must be absent.
                ("all null".into(), Column::Int64(vec![None; 6])),
            ],
        }
    }

    /// The small table's values as Python literals, so the script compares against exactly what
    /// was written.
    fn small_check_script() -> String {
        fn py_float(v: f64) -> String {
            if v.is_nan() {
                "float('nan')".into()
            } else if v.is_infinite() {
                format!("float('{}inf')", if v < 0.0 { "-" } else { "" })
            } else {
                format!("{v:?}")
            }
        }
        fn py_str(s: &str) -> String {
            // A JSON string literal is a valid Python one (serde_json keeps non-ASCII raw).
            serde_json::to_string(s).unwrap()
        }
        fn list<T>(v: &[Option<T>], f: impl Fn(&T) -> String) -> String {
            let items: Vec<String> = v.iter().map(|x| x.as_ref().map_or("None".into(), &f)).collect();
            format!("[{}]", items.join(", "))
        }
        let table = small_table();
        let mut expected = String::from("{");
        for (name, column) in &table.columns {
            let values = match column {
                Column::Int64(v) => list(v, |x| x.to_string()),
                Column::Double(v) => list(v, |x| py_float(*x)),
                Column::Utf8(v) => list(v, |x| py_str(x)),
                Column::Bool(v) => list(v, |x| if *x { "True".into() } else { "False".into() }),
            };
            expected.push_str(&format!("{}: {values}, ", py_str(name)));
        }
        expected.push('}');
        format!("expected = {expected}\n{SMALL_CHECK}")
    }

    const SMALL_CHECK: &str = r#"
import math, struct, sys
import pyarrow as pa, pyarrow.parquet as pq
path = sys.argv[1]
t = pq.read_table(path)
want_types = {"int": pa.int64(), "double": pa.float64(), "text": pa.string(), "flag": pa.bool_(), "all null": pa.int64()}
assert t.schema.names == list(expected), t.schema
for name, ty in want_types.items():
    assert t.schema.field(name).type == ty, (name, t.schema.field(name).type)
    assert t.schema.field(name).nullable, name
assert t.num_rows == 6, t.num_rows
def same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return type(a) is type(b) and a == b or (a is None and b is None)
for name, want in expected.items():
    got = t.column(name).to_pylist()
    assert len(got) == len(want) and all(same(g, w) for g, w in zip(got, want)), (name, got, want)
    assert t.column(name).null_count == sum(w is None for w in want), name

f = pq.ParquetFile(path)
md = f.metadata
assert md.num_rows == 6 and md.num_row_groups == 1, md
assert md.created_by.startswith("labmate version "), md.created_by
cols = {md.schema.column(i).name: i for i in range(md.num_columns)}
assert md.schema.column(cols["text"]).logical_type.type == "STRING"
def stats(name):
    return md.row_group(0).column(cols[name]).statistics
s = stats("int")
assert s.null_count == 2 and s.has_min_max and s.min == -2**63 and s.max == 2**63 - 1, s
s = stats("double")
assert s.null_count == 1 and s.has_min_max and s.min == -math.inf and s.max == math.inf, s
s = stats("text")
assert s.null_count == 1 and s.min == "" and s.max == "日本語 🚀", s
s = stats("flag")
assert s.null_count == 2 and s.min is False and s.max is True, s
s = stats("all null")
assert s.null_count == 6 and not s.has_min_max, s
print("small ok")
"#;

    const EMPTY_CHECK: &str = r#"
import sys
import pyarrow as pa, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
assert t.num_rows == 0, t.num_rows
want = [("int", pa.int64()), ("double", pa.float64()), ("text", pa.string()), ("flag", pa.bool_()), ("all null", pa.int64())]
assert [(f.name, f.type) for f in t.schema] == want, t.schema
print("empty ok")
"#;

    const BIG_ROWS: usize = 2_500_000;

    /// Values are formulas of the row number so the script can rebuild them without a side file.
    fn big_table(rows: usize) -> Table {
        let ints = (0..rows).map(|i| (i % 11 != 0).then_some(i as i64 * 7 - 3)).collect();
        let doubles = (0..rows).map(|i| (i % 13 != 0).then_some(i as f64 * 0.5)).collect();
        let strings = (0..rows).map(|i| (i % 17 != 0).then(|| format!("r{i}"))).collect();
        let bools = (0..rows).map(|i| (i % 19 != 0).then_some(i % 3 == 0)).collect();
        Table {
            columns: vec![
                ("i".into(), Column::Int64(ints)),
                ("d".into(), Column::Double(doubles)),
                ("s".into(), Column::Utf8(strings)),
                ("b".into(), Column::Bool(bools)),
            ],
        }
    }

    const BIG_CHECK: &str = r#"
import sys
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
n = 2_500_000
path = sys.argv[1]
md = pq.ParquetFile(path).metadata
assert md.num_rows == n and md.num_row_groups == 3, md
assert [md.row_group(g).num_rows for g in range(3)] == [1_000_000, 1_000_000, 500_000]
t = pq.read_table(path)
assert t.num_rows == n
assert [(f.name, f.type) for f in t.schema] == [("i", pa.int64()), ("d", pa.float64()), ("s", pa.string()), ("b", pa.bool_())], t.schema
i = np.arange(n, dtype=np.int64)
want = {
    "i": pa.array(i * 7 - 3, mask=(i % 11 == 0)),
    "d": pa.array(i * 0.5, mask=(i % 13 == 0)),
    "s": pa.array([None if k % 17 == 0 else f"r{k}" for k in range(n)], type=pa.string()),
    "b": pa.array(i % 3 == 0, mask=(i % 19 == 0)),
}
for name, w in want.items():
    got = t.column(name).combine_chunks()
    assert got.equals(w), name
    assert got.null_count == w.null_count, name
print("big ok")
"#;
}
