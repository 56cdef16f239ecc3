//! A command's output: pipes teed to the terminal and the run folder, the
//! `##labmate` metric lines found in stdout, the recent tail kept for crash
//! reports, and the time of the latest activity.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use crate::record::{Batch, Event, MetricLine, Record, Step, quote_bare_non_finite};
use crate::rundir::Appender;

/// The prefix of a metrics line in a program's output.
pub const MARKER: &[u8] = b"##labmate ";
/// Longest marker line kept; longer ones are reported, not parsed.
const MAX_MARKER_LINE: usize = 1 << 20;
/// How much of the end of a stream is kept for crash reports.
const TAIL_BYTES: usize = 64 * 1024;

/// When the run last showed a sign of life, shared between threads.
pub struct Activity(AtomicU64);

impl Activity {
    pub fn new(now: f64) -> Activity {
        Activity(AtomicU64::new(now.to_bits()))
    }

    pub fn touch(&self, now: f64) {
        self.0.fetch_max(now.to_bits(), Ordering::Relaxed);
    }

    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// The last bytes written to a stream.
#[derive(Default)]
pub struct Tail(VecDeque<u8>);

impl Tail {
    pub fn push(&mut self, bytes: &[u8]) {
        let keep = bytes.len().min(TAIL_BYTES);
        self.0.extend(&bytes[bytes.len() - keep..]);
        let excess = self.0.len().saturating_sub(TAIL_BYTES);
        self.0.drain(..excess);
    }

    pub fn text(&self) -> String {
        let (a, b) = self.0.as_slices();
        let mut v = a.to_vec();
        v.extend_from_slice(b);
        String::from_utf8_lossy(&v).into_owned()
    }
}

/// Copies a pipe to its sinks until it closes, one chunk at a time.
pub fn pump(
    mut src: impl Read,
    mut echo: Option<impl Write>,
    output: &Mutex<Appender>,
    mut own_log: Option<Appender>,
    tail: &Mutex<Tail>,
    activity: &Activity,
    mut on_chunk: impl FnMut(&[u8]),
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let chunk = &buf[..n];
        activity.touch(crate::clock::now());
        if let Some(w) = echo.as_mut() {
            // The terminal may be gone (a closed ssh session); keep recording.
            if w.write_all(chunk).and_then(|_| w.flush()).is_err() {
                echo = None;
            }
        }
        let _ = output.lock().expect("output lock").write_bytes(chunk);
        if let Some(log) = own_log.as_mut() {
            let _ = log.write_bytes(chunk);
        }
        tail.lock().expect("tail lock").push(chunk);
        on_chunk(chunk);
    }
}

/// Records as the lines of a run file: consecutive `log` records go into
/// one `batch` (format 2) when `batches` allows, each other record on its own.
pub fn lines<'a>(records: impl IntoIterator<Item = &'a Record>, batches: bool) -> String {
    let mut out = String::new();
    let mut logs: Vec<&'a Record> = Vec::new();
    for record in records {
        if batches && matches!(record, Record::Log { .. }) {
            logs.push(record);
            continue;
        }
        push_logs(&mut out, &mut logs);
        out.push_str(&record.to_line());
    }
    push_logs(&mut out, &mut logs);
    out
}

/// Writes the `log` records gathered so far: one as itself, several as a batch.
fn push_logs(out: &mut String, logs: &mut Vec<&Record>) {
    match logs.as_slice() {
        [] => {}
        [one] => out.push_str(&one.to_line()),
        several => {
            let points: Vec<_> = several
                .iter()
                .filter_map(|r| match r {
                    Record::Log { step, time, metrics } => Some((*step, *time, metrics.values.as_slice())),
                    _ => None,
                })
                .collect();
            // A block's step differences are 64-bit integers: a jump past
            // that (2**63 - 1, then -2**63) starts a new block.
            for block in points.chunk_by(|a, b| b.0.checked_sub(a.0).is_some()) {
                out.push_str(&Batch::of_logs(block.iter().copied()).to_line());
                out.push('\n');
            }
        }
    }
    logs.clear();
}

/// Finds `##labmate {...}` lines in a byte stream of any line length and
/// encoding, and turns them into records.
#[derive(Default)]
pub struct MarkerScanner {
    line: Vec<u8>,
    /// The current line is not a marker line; skip to its end.
    skipping: bool,
    next_step: i64,
}

impl MarkerScanner {
    pub fn feed(&mut self, mut chunk: &[u8], now: f64) -> Vec<Record> {
        let mut out = Vec::new();
        while !chunk.is_empty() {
            let (part, rest, ends) = match chunk.iter().position(|b| *b == b'\n') {
                Some(i) => (&chunk[..i], &chunk[i + 1..], true),
                None => (chunk, &chunk[chunk.len()..], false),
            };
            chunk = rest;
            if !self.skipping {
                self.line.extend_from_slice(part);
                let prefix = self.line.len().min(MARKER.len());
                if self.line[..prefix] != MARKER[..prefix] {
                    self.skipping = true;
                    self.line.clear();
                } else if self.line.len() > MAX_MARKER_LINE {
                    let head = String::from_utf8_lossy(&self.line[..200]).into_owned();
                    out.push(Record::Event(Event::warning(
                        now,
                        "metrics line too long; skipped",
                        Some(Value::from(head)),
                    )));
                    self.skipping = true;
                    self.line.clear();
                }
            }
            if ends {
                if !self.skipping && self.line.len() >= MARKER.len() {
                    // The buffer goes back once parsed: a line's bytes are not reallocated line after line.
                    let line = std::mem::take(&mut self.line);
                    self.parse(&line, now, &mut out);
                    self.line = line;
                }
                self.line.clear();
                self.skipping = false;
            }
        }
        out
    }

    fn parse(&mut self, line: &[u8], now: f64, out: &mut Vec<Record>) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r');
        let body = &text[MARKER.len()..];
        let parsed = serde_json::from_str::<MetricLine>(body).or_else(|e| match quote_bare_non_finite(body) {
            Some(fixed) => serde_json::from_str::<MetricLine>(&fixed).map_err(|e| e.to_string()),
            None => Err(e.to_string()),
        });
        let malformed = |why: String| {
            Record::Event(Event::warning(now, format!("malformed metrics line: {why}"), Some(Value::from(text))))
        };
        let MetricLine { step, mut metrics } = match parsed {
            Ok(m) => m,
            Err(e) => return out.push(malformed(e)),
        };
        let step = match step.map(Step::exact) {
            Some(Ok(s)) => s,
            Some(Err(why)) => return out.push(malformed(why)),
            None => self.next_step,
        };
        // After the largest step, later lines without one stay at it.
        self.next_step = step.saturating_add(1);
        let dropped = std::mem::take(&mut metrics.dropped);
        out.push(Record::Log { step, time: now, metrics });
        if !dropped.is_empty() {
            out.push(Record::Event(Event::warning(
                now,
                format!("metrics line: dropped non-numeric value(s) of {}", dropped.join(", ")),
                Some(Value::from(text)),
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanner_finds_marker_lines_across_chunks() {
        let mut s = MarkerScanner::default();
        let mut rs = s.feed(b"hello\n##labmate {\"step\": 10, \"lo", 1.0);
        rs.extend(s.feed(b"ss\": 0.5}\nnot ##labmate {}\n##labmate {\"loss\": NaN}\n", 2.0));
        assert_eq!(rs.len(), 2);
        let Record::Log { step, metrics, .. } = &rs[0] else { panic!() };
        assert_eq!((*step, metrics.values.clone()), (10, vec![("loss".to_string(), 0.5)]));
        let Record::Log { step, metrics, .. } = &rs[1] else { panic!() };
        assert_eq!(*step, 11);
        assert!(metrics.values[0].1.is_nan());
    }

    #[test]
    fn scanner_reports_malformed_lines_and_survives_binary() {
        let mut s = MarkerScanner::default();
        let mut input = vec![0xff, 0xfe, b'\n'];
        input.extend_from_slice(b"##labmate {\"loss\": 0.3\n##labmate [1,2]\n##labmate {\"a\": \"x\", \"b\": 1}\n");
        let rs = s.feed(&input, 1.0);
        assert!(matches!(&rs[0], Record::Event(e) if e.message.starts_with("malformed metrics line")));
        assert!(matches!(&rs[1], Record::Event(e) if e.message.starts_with("malformed metrics line")));
        assert!(matches!(&rs[2], Record::Log { step: 0, .. }));
        assert!(matches!(&rs[3], Record::Event(e) if e.message.contains("non-numeric value(s) of a")));
    }

    #[test]
    fn scanner_keeps_every_64_bit_step_exactly() {
        let mut s = MarkerScanner::default();
        let lines = format!(
            "##labmate {{\"step\": {}, \"a\": 1}}\n##labmate {{\"step\": {}, \"a\": 1}}\n##labmate {{\"a\": 2}}\n\
             ##labmate {{\"step\": {}, \"a\": 1}}\n##labmate {{\"a\": 3}}\n##labmate {{\"step\": 18446744073709551616, \"a\": 1}}\n\
             ##labmate {{\"a\": 4}}\n",
            (1u64 << 53) + 1,
            1_796_104_428_665_247_500u64,
            i64::MAX,
        );
        let steps: Vec<Result<i64, String>> = s
            .feed(lines.as_bytes(), 1.0)
            .into_iter()
            .map(|r| match r {
                Record::Log { step, .. } => Ok(step),
                Record::Event(e) => Err(e.message),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            steps[..5],
            [
                Ok((1i64 << 53) + 1),
                Ok(1_796_104_428_665_247_500),
                Ok(1_796_104_428_665_247_501),
                Ok(i64::MAX),
                Ok(i64::MAX)
            ]
        );
        assert!(steps[5].as_ref().unwrap_err().contains("outside the signed 64-bit range"), "{:?}", steps[5]);
        assert_eq!(steps[6], Ok(i64::MAX), "a bad step loses no later point");
    }

    #[test]
    fn scanner_handles_very_long_ordinary_lines() {
        let mut s = MarkerScanner::default();
        let long = vec![b'x'; 5 << 20];
        assert!(s.feed(&long, 1.0).is_empty());
        assert_eq!(s.feed(b"\n##labmate {\"a\": 1}\n", 1.0).len(), 1);
    }

    #[test]
    fn tails_keep_the_end() {
        let mut t = Tail::default();
        t.push(&vec![b'a'; 100_000]);
        t.push(b"end\n");
        let text = t.text();
        assert_eq!(text.len(), TAIL_BYTES);
        assert!(text.ends_with("aend\n"));
    }
}
