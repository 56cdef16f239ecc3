//! The `batch` record of format 2 (docs/FORMAT.md, "Batches"): a block of
//! points written column by column, the keys once. A key's values are a JSON
//! array (with `null` where the key has no value), the base64 of
//! little-endian doubles, or either of those at listed positions only.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::{Num, Point, Scalar, Step, json};

/// A block of points: one step and time per position, and each key's values.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub steps: Vec<i64>,
    pub times: Vec<f64>,
    pub columns: Vec<Column>,
    /// Keys with a value that is not a number (dropped, as in `log`).
    pub dropped: Vec<String>,
}

/// One step of a batch, with its time and the values of the keys that have one there.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub step: i64,
    pub time: f64,
    pub values: Vec<(String, f64)>,
}

/// One key's values in a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub key: String,
    /// The positions that have a value, ascending; None when every one has.
    pub at: Option<Vec<u32>>,
    pub values: Vec<f64>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The latest time in the block.
    pub fn last_time(&self) -> f64 {
        self.times.iter().copied().fold(f64::NAN, f64::max)
    }

    /// A column's points, in the block's order.
    pub fn points<'a>(&'a self, column: &'a Column) -> impl Iterator<Item = Point> + 'a {
        let position = move |i: usize| column.at.as_ref().map_or(i, |at| at[i] as usize);
        column.values.iter().enumerate().map(move |(i, &value)| {
            let p = position(i);
            Point { step: self.steps[p], time: self.times[p], value }
        })
    }

    /// The points of `log` records (step, time, metrics) as one block, in
    /// their order; a key a record lacks has no value at its position.
    pub fn of_logs<'a>(logs: impl IntoIterator<Item = (i64, f64, &'a [(String, f64)])>) -> Batch {
        let mut batch = Batch { steps: Vec::new(), times: Vec::new(), columns: Vec::new(), dropped: Vec::new() };
        // Blocks hold few keys, mostly the same at every step: the column of
        // a key is found where the previous step had it, else by a scan.
        let mut last: Vec<usize> = Vec::new();
        for (position, (step, time, values)) in logs.into_iter().enumerate() {
            batch.steps.push(step);
            batch.times.push(time);
            for (i, (key, value)) in values.iter().enumerate() {
                let c = match last.get(i) {
                    Some(&c) if batch.columns[c].key == *key => c,
                    _ => {
                        let c = match batch.columns.iter().position(|col| col.key == *key) {
                            Some(c) => c,
                            None => {
                                batch.columns.push(Column {
                                    key: key.clone(),
                                    at: Some(Vec::new()),
                                    values: Vec::new(),
                                });
                                batch.columns.len() - 1
                            }
                        };
                        if i < last.len() {
                            last[i] = c;
                        } else {
                            last.push(c);
                        }
                        c
                    }
                };
                let column = &mut batch.columns[c];
                column.at.as_mut().expect("built with positions").push(position as u32);
                column.values.push(*value);
            }
        }
        let n = batch.len();
        for column in &mut batch.columns {
            if column.values.len() == n {
                column.at = None;
            }
        }
        batch
    }

    /// The block step by step, as log records would hold it.
    pub fn rows(&self) -> Vec<Row> {
        let mut rows: Vec<Row> =
            self.steps.iter().zip(&self.times).map(|(&step, &time)| Row { step, time, values: Vec::new() }).collect();
        for column in &self.columns {
            for (i, &value) in column.values.iter().enumerate() {
                let position = column.at.as_ref().map_or(i, |at| at[i] as usize);
                rows[position].values.push((column.key.clone(), value));
            }
        }
        rows
    }

    /// Builds a batch from its fields as a line holds them; the error says
    /// which field disagrees.
    pub(super) fn from_fields(
        n: Option<u64>,
        step: Option<Step>,
        dstep: Option<&RawValue>,
        time: Option<f64>,
        dt_us: Option<Vec<i64>>,
        data: Option<&RawValue>,
    ) -> Result<Batch, String> {
        let dt_us = dt_us.ok_or("batch record without dt_us")?;
        let n = n.ok_or("batch record without n")?;
        if n == 0 || n != dt_us.len() as u64 {
            return Err(format!("batch record: n is {n} but dt_us holds {} times", dt_us.len()));
        }
        let n = dt_us.len();
        let first = step.ok_or("batch record without a step")?.exact()?;
        let steps = steps(first, n, dstep)?;
        let base = time.filter(|t| t.is_finite()).ok_or("batch record without a finite time")?;
        let times = dt_us.iter().map(|&d| base + d as f64 / 1e6).collect();
        let raw = data.ok_or("batch record without data")?;
        let Columns(parsed) = serde_json::from_str(raw.get()).map_err(|e| format!("data: {e}"))?;
        let mut columns = Vec::with_capacity(parsed.len());
        let mut dropped = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (key, raw) in parsed {
            if !seen.insert(key.clone()) {
                return Err(format!("data: {key:?} is given twice"));
            }
            let (at, values) = match raw {
                RawColumn::Dense(values) => (None, values),
                RawColumn::At(at, values) => (Some(at), values),
            };
            let expected = at.as_ref().map_or(n, Vec::len);
            if values.len() != expected {
                return Err(format!("data: {key:?} has {} values for {expected} positions", values.len()));
            }
            if let Some(at) = &at {
                if at.windows(2).any(|w| w[0] >= w[1]) || at.last().is_some_and(|&p| p as usize >= n) {
                    return Err(format!("data: {key:?} lists positions that are not ascending within 0..{n}"));
                }
            }
            let mut keep = Vec::with_capacity(values.len());
            let mut positions = Vec::new();
            let mut not_number = false;
            for (i, v) in values.into_iter().enumerate() {
                let p = at.as_ref().map_or(i as u32, |at| at[i]);
                match v {
                    Scalar::Number(v) => {
                        keep.push(v);
                        positions.push(p);
                    }
                    Scalar::Null => {}
                    Scalar::NotNumber => not_number = true,
                }
            }
            if not_number {
                dropped.push(key.clone());
            }
            // A key with no value anywhere in the block is not in it, as a
            // log record's key whose value was dropped is not.
            if keep.is_empty() {
                continue;
            }
            let at = (at.is_some() || positions.len() < n).then_some(positions);
            columns.push(Column { key, at, values: keep });
        }
        Ok(Batch { steps, times, columns, dropped })
    }

    /// The batch as a line (without its newline): each column as the base64
    /// of its doubles, exact; steps by their stride when it is constant. Its
    /// writer keeps every step difference within 64 bits (a block is split
    /// where it would not be), as readers require.
    pub fn to_line(&self) -> String {
        let n = self.len();
        let first = self.steps.first().copied().unwrap_or(0);
        let deltas: Vec<i128> = self.steps.windows(2).map(|w| i128::from(w[1]) - i128::from(w[0])).collect();
        let base = self.times.first().copied().unwrap_or(0.0);
        let mut s = format!("{{\"t\":\"batch\",\"n\":{n},\"step\":{first}");
        match deltas.first() {
            Some(&d) if deltas.iter().all(|&x| x == d) => s.push_str(&format!(",\"dstep\":{d}")),
            Some(_) => s.push_str(&format!(",\"dstep\":{}", json(&deltas))),
            None => {}
        }
        let dt: Vec<i64> = self.times.iter().map(|t| ((t - base) * 1e6).round() as i64).collect();
        s.push_str(&format!(",\"time\":{},\"dt_us\":{},\"data\":{{", json(&Num(base)), json(&dt)));
        for (i, c) in self.columns.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let mut bytes = Vec::with_capacity(c.values.len() * 8);
            for v in &c.values {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
            // Base64 has nothing JSON escapes.
            let encoded = format!("\"{}\"", BASE64.encode(bytes));
            s.push_str(&json(&c.key));
            s.push(':');
            match &c.at {
                None => s.push_str(&encoded),
                Some(at) => s.push_str(&format!("{{\"at\":{},\"v\":{encoded}}}", json(at))),
            }
        }
        s.push_str("}}");
        s
    }
}

/// The steps of a block: the first, then by a constant stride or by the
/// listed differences; every one within 64 bits.
fn steps(first: i64, n: usize, dstep: Option<&RawValue>) -> Result<Vec<i64>, String> {
    const PAST: &str = "batch record: a step runs past the signed 64-bit range";
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Dstep {
        Stride(i64),
        Each(Vec<i64>),
    }
    let dstep = match dstep {
        None if n == 1 => Dstep::Each(Vec::new()),
        None => return Err("batch record of several steps without dstep".into()),
        Some(raw) => serde_json::from_str(raw.get()).map_err(|_| "dstep is neither an integer nor a list of them")?,
    };
    let mut steps = Vec::with_capacity(n);
    steps.push(first);
    match dstep {
        Dstep::Stride(d) => {
            for _ in 1..n {
                let next = steps[steps.len() - 1].checked_add(d).ok_or(PAST)?;
                steps.push(next);
            }
        }
        Dstep::Each(deltas) => {
            if deltas.len() != n - 1 {
                return Err(format!("batch record: dstep holds {} differences for {n} steps", deltas.len()));
            }
            for d in deltas {
                let next = steps[steps.len() - 1].checked_add(d).ok_or(PAST)?;
                steps.push(next);
            }
        }
    }
    Ok(steps)
}

/// A column as written: its values at every position, or at listed ones.
enum RawColumn {
    Dense(Vec<Scalar>),
    At(Vec<u32>, Vec<Scalar>),
}

/// The values of a column without positions: an array or base64 doubles.
struct Values(Vec<Scalar>);

impl<'de> Deserialize<'de> for Values {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Values;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of values or a base64 string of doubles")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Values, E> {
                let bytes = BASE64.decode(v).map_err(|e| E::custom(format!("not base64: {e}")))?;
                if bytes.len() % 8 != 0 {
                    return Err(E::custom(format!("{} bytes of base64 are not whole doubles", bytes.len())));
                }
                let values = bytes
                    .chunks_exact(8)
                    .map(|c| Scalar::Number(f64::from_le_bytes(c.try_into().expect("8 bytes"))))
                    .collect();
                Ok(Values(values))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Values, A::Error> {
                let mut values = Vec::with_capacity(a.size_hint().unwrap_or(0));
                while let Some(v) = a.next_element::<Scalar>()? {
                    values.push(v);
                }
                Ok(Values(values))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RawColumn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawColumn;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array, a base64 string, or {\"at\": [...], \"v\": ...}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawColumn, E> {
                Values::deserialize(de::value::StrDeserializer::<E>::new(v)).map(|v| RawColumn::Dense(v.0))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, a: A) -> Result<RawColumn, A::Error> {
                Values::deserialize(de::value::SeqAccessDeserializer::new(a)).map(|v| RawColumn::Dense(v.0))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<RawColumn, A::Error> {
                let (mut at, mut v) = (None, None);
                while let Some(key) = a.next_key::<Cow<'de, str>>()? {
                    match key.as_ref() {
                        "at" => at = Some(a.next_value::<Vec<u32>>()?),
                        "v" => v = Some(a.next_value::<Values>()?.0),
                        _ => {
                            a.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                match (at, v) {
                    (Some(at), Some(v)) => Ok(RawColumn::At(at, v)),
                    _ => Err(de::Error::custom("a column object needs both at and v")),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// The `data` object of a batch: keys in their written order.
struct Columns(Vec<(String, RawColumn)>);

impl<'de> Deserialize<'de> for Columns {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Columns;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of metric columns")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Columns, A::Error> {
                let mut columns = Vec::new();
                while let Some(key) = a.next_key::<Cow<'de, str>>()? {
                    columns.push((key.into_owned(), a.next_value::<RawColumn>()?));
                }
                Ok(Columns(columns))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Record;
    use super::*;

    fn batch(line: &str) -> Batch {
        match Record::parse(line) {
            Ok(Record::Batch(b)) => b,
            other => panic!("not a batch: {other:?}"),
        }
    }

    fn b64(values: &[f64]) -> String {
        BASE64.encode(values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())
    }

    #[test]
    fn columns_read_in_every_form() {
        let line = format!(
            r#"{{"t":"batch","n":3,"step":10,"dstep":2,"time":100.5,"dt_us":[0,250000,500000],"data":{{"loss":[0.5,"NaN",null],"lr":"{}","acc":{{"at":[2],"v":[0.9]}},"g":{{"at":[0,1],"v":"{}"}}}}}}"#,
            b64(&[1e-3, 2e-3, f64::INFINITY]),
            b64(&[-0.0, f64::NEG_INFINITY]),
        );
        let b = batch(&line);
        assert_eq!(b.steps, [10, 12, 14]);
        assert_eq!(b.times, [100.5, 100.75, 101.0]);
        let got: Vec<(String, Vec<(i64, f64)>)> =
            b.columns.iter().map(|c| (c.key.clone(), b.points(c).map(|p| (p.step, p.value)).collect())).collect();
        assert_eq!(got[0].0, "loss");
        assert_eq!(got[0].1[0], (10, 0.5));
        assert!(got[0].1[1].1.is_nan() && got[0].1.len() == 2, "null is no point: {got:?}");
        assert_eq!(got[1].1, [(10, 1e-3), (12, 2e-3), (14, f64::INFINITY)]);
        assert_eq!(got[2].1, [(14, 0.9)]);
        assert_eq!(got[3].1, [(10, -0.0), (12, f64::NEG_INFINITY)]);
        assert!(got[3].1[0].1.is_sign_negative());
    }

    #[test]
    fn a_batch_writes_and_reads_back_exactly() {
        let b = Batch {
            steps: vec![i64::MAX - 2, i64::MAX - 1, i64::MAX],
            times: vec![1764135391.25, 1764135391.5, 1764135392.0],
            columns: vec![
                Column { key: "loss ü".into(), at: None, values: vec![0.1, f64::NAN, 1.0 / 3.0] },
                Column { key: "val".into(), at: Some(vec![2]), values: vec![f64::MIN_POSITIVE] },
            ],
            dropped: vec![],
        };
        let line = b.to_line();
        let back = batch(&line);
        assert_eq!(back.steps, b.steps);
        assert_eq!(back.times, b.times);
        assert_eq!(back.columns[1], b.columns[1]);
        let bits = |c: &Column| c.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back.columns[0]), bits(&b.columns[0]));
        let uneven = Batch { steps: vec![5, 3, 100], ..b };
        assert_eq!(batch(&uneven.to_line()).steps, [5, 3, 100]);
    }

    #[test]
    fn a_batch_that_disagrees_with_itself_says_where() {
        let cases = [
            (r#"{"t":"batch","n":2,"step":0,"dstep":1,"time":1,"dt_us":[0],"data":{}}"#, "n is 2 but dt_us holds 1"),
            (r#"{"t":"batch","n":2,"step":0,"time":1,"dt_us":[0,1],"data":{}}"#, "without dstep"),
            (
                r#"{"t":"batch","n":2,"step":9223372036854775807,"dstep":1,"time":1,"dt_us":[0,1],"data":{}}"#,
                "past the signed 64-bit range",
            ),
            (r#"{"t":"batch","n":2,"step":0,"dstep":[1,1],"time":1,"dt_us":[0,1],"data":{}}"#, "2 differences for 2"),
            (r#"{"t":"batch","n":2,"step":0,"dstep":1,"time":1,"dt_us":[0,1],"data":{"x":[1]}}"#, "1 values for 2"),
            (r#"{"t":"batch","n":1,"step":0,"time":1,"dt_us":[0],"data":{"x":"AAAA"}}"#, "not whole doubles"),
            (r#"{"t":"batch","n":1,"step":0,"time":1,"dt_us":[0],"data":{"x":"%%"}}"#, "not base64"),
            (
                r#"{"t":"batch","n":2,"step":0,"dstep":1,"time":1,"dt_us":[0,1],"data":{"x":{"at":[1,0],"v":[1,2]}}}"#,
                "not ascending",
            ),
            (r#"{"t":"batch","n":1,"step":0.5,"time":1,"dt_us":[0],"data":{}}"#, "not an integer"),
            (r#"{"t":"batch","n":1,"step":0,"dt_us":[0],"data":{}}"#, "finite time"),
            (r#"{"t":"batch","n":1,"step":0,"time":1,"dt_us":[0],"data":{"x":[1],"x":[2]}}"#, "given twice"),
        ];
        for (line, why) in cases {
            let err = Record::parse(line).unwrap_err();
            assert!(err.contains(why), "{line}: {err}");
        }
    }

    #[test]
    fn a_value_that_is_no_number_is_dropped_and_named() {
        let b = batch(r#"{"t":"batch","n":2,"step":0,"dstep":1,"time":1,"dt_us":[0,1],"data":{"x":[1,"soon"]}}"#);
        assert_eq!(b.dropped, ["x"]);
        assert_eq!(b.columns[0].at.as_deref(), Some(&[0][..]));
    }

    #[test]
    fn a_batch_reads_step_by_step_as_its_log_records_would() {
        let b = batch(
            r#"{"t":"batch","n":3,"step":7,"dstep":[1,5],"time":10,"dt_us":[0,500000,1000000],"data":{"loss":[1,2,3],"val":{"at":[2],"v":[0.5]}}}"#,
        );
        let row = |step, time, v: &[(&str, f64)]| Row {
            step,
            time,
            values: v.iter().map(|(k, x)| (k.to_string(), *x)).collect(),
        };
        assert_eq!(
            b.rows(),
            [
                row(7, 10.0, &[("loss", 1.0)]),
                row(8, 10.5, &[("loss", 2.0)]),
                row(13, 11.0, &[("loss", 3.0), ("val", 0.5)])
            ]
        );
    }

    #[test]
    fn a_key_without_a_value_in_the_block_has_no_column() {
        let b = batch(
            r#"{"t":"batch","n":2,"step":0,"dstep":1,"time":1,"dt_us":[0,1],"data":{"gaps":[null,null],"text":["a",{}],"none":{"at":[],"v":""},"x":[1,2]}}"#,
        );
        assert_eq!(b.columns.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(), ["x"]);
        assert_eq!(b.dropped, ["text"]);
    }
}
