//! The record format of run folders (docs/FORMAT.md): one JSON object per
//! line, typed by `t`. Shared by every writer and the index's reader.

pub mod batch;

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

pub use batch::Batch;

/// A metric value: an f64 that writes NaN and ±Inf as the strings `"NaN"`,
/// `"Infinity"` and `"-Infinity"` (JSON has no such numbers).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Num(pub f64);

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.is_finite() {
            s.serialize_f64(v)
        } else if v.is_nan() {
            s.serialize_str("NaN")
        } else if v > 0.0 {
            s.serialize_str("Infinity")
        } else {
            s.serialize_str("-Infinity")
        }
    }
}

/// Serialises an f64 field with the non-finite encoding of [`Num`].
pub fn ser_num<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    Num(*v).serialize(s)
}

/// The strings that stand for non-finite numbers.
pub fn parse_non_finite(s: &str) -> Option<f64> {
    match s {
        "NaN" | "nan" => Some(f64::NAN),
        "Infinity" | "inf" | "+Infinity" => Some(f64::INFINITY),
        "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// A value where a metric number belongs: a number (or one of the strings
/// of non-finite numbers), `null`, or something else; never fails to parse.
pub(super) enum Scalar {
    Number(f64),
    Null,
    NotNumber,
}

impl Scalar {
    fn number(self) -> Option<f64> {
        match self {
            Scalar::Number(v) => Some(v),
            Scalar::Null | Scalar::NotNumber => None,
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v as f64))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Number(if v { 1.0 } else { 0.0 }))
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(parse_non_finite(v).map_or(Scalar::NotNumber, Scalar::Number))
            }
            fn visit_unit<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Null)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Scalar, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::NotNumber)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Scalar, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::NotNumber)
            }
        }
        d.deserialize_any(V)
    }
}

/// A step as written: an integer (or an integral number) in the signed
/// 64-bit range is exact; anything else says why it is not a step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    Exact(i64),
    NotInteger(f64),
    /// An integer outside the signed 64-bit range (as near as f64 holds it).
    OutOfRange(f64),
}

impl Step {
    /// The step, or why it is not one.
    pub fn exact(self) -> Result<i64, String> {
        match self {
            Step::Exact(s) => Ok(s),
            Step::NotInteger(v) => Err(format!("step {} is not an integer", json(&Num(v)))),
            Step::OutOfRange(v) => Err(format!("step {} is outside the signed 64-bit range", json(&Num(v)))),
        }
    }

    fn of_f64(v: f64) -> Step {
        // Every integral f64 in [-2^63, 2^63) converts to i64 exactly.
        const TWO_63: f64 = 9_223_372_036_854_775_808.0;
        if !v.is_finite() || v.fract() != 0.0 {
            Step::NotInteger(v)
        } else if (-TWO_63..TWO_63).contains(&v) {
            Step::Exact(v as i64)
        } else {
            Step::OutOfRange(v)
        }
    }
}

impl<'de> Deserialize<'de> for Step {
    /// Read from the number's text, so that an integer just outside the
    /// range is not rounded into it by the way through f64.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <&RawValue>::deserialize(d)?;
        let text = raw.get().trim();
        if let Ok(v) = text.parse::<i64>() {
            return Ok(Step::Exact(v));
        }
        let digits = text.strip_prefix('-').unwrap_or(text);
        match text.parse::<f64>() {
            Ok(v) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => Ok(Step::OutOfRange(v)),
            Ok(v) => Ok(Step::of_f64(v)),
            Err(_) => Err(serde::de::Error::custom(format!("expected an integer step, found {text}"))),
        }
    }
}

/// The metrics of one `log` record, in their written order.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Metrics {
    pub values: Vec<(String, f64)>,
    /// Keys whose value was not a number; they are dropped with a warning.
    pub dropped: Vec<String>,
}

impl<'de> Deserialize<'de> for Metrics {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Metrics;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of metric values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Metrics, A::Error> {
                let mut m = Metrics::default();
                while let Some(key) = a.next_key::<Cow<'de, str>>()? {
                    match a.next_value::<Scalar>()?.number() {
                        Some(v) => m.values.push((key.into_owned(), v)),
                        None => m.dropped.push(key.into_owned()),
                    }
                }
                Ok(m)
            }
        }
        d.deserialize_map(V)
    }
}

/// The body of a `##labmate` line: metrics, and the step when one is given
/// (read exactly, not as a metric).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct MetricLine {
    pub step: Option<Step>,
    pub metrics: Metrics,
}

impl<'de> Deserialize<'de> for MetricLine {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MetricLine;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of metric values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<MetricLine, A::Error> {
                let mut line = MetricLine::default();
                while let Some(key) = a.next_key::<Cow<'de, str>>()? {
                    if key == "step" {
                        line.step = Some(a.next_value::<Step>()?);
                        continue;
                    }
                    match a.next_value::<Scalar>()?.number() {
                        Some(v) => line.metrics.values.push((key.into_owned(), v)),
                        None => line.metrics.dropped.push(key.into_owned()),
                    }
                }
                Ok(line)
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Log {
        step: i64,
        time: f64,
        metrics: Metrics,
    },
    Config {
        time: f64,
        data: Map<String, Value>,
    },
    Summary {
        time: f64,
        data: Map<String, Value>,
    },
    Meta {
        time: f64,
        name: Option<String>,
        tags: Vec<String>,
        /// Where the run belongs (wandb's project, group and job type) and
        /// what it is about: each one given replaces the run's.
        project: Option<String>,
        group: Option<String>,
        job_type: Option<String>,
        notes: Option<String>,
    },
    /// How a metric (or every metric a glob names) is read: its x axis, its summary, its goal.
    Define {
        time: f64,
        def: MetricDef,
    },
    Event(Event),
    /// The run waits in the launch queue; `pid` is its supervisor's.
    Queued {
        time: f64,
        pid: u32,
    },
    Start {
        time: f64,
        pid: Option<u32>,
        child_pid: Option<u32>,
        pgid: Option<i32>,
        /// Who leads the group `pgid`, so that a reader can tell it from a
        /// later group with the same id (see [`crate::sys::procgroup`]).
        leader: Option<Leader>,
        /// Where a scheduler placed the run, when it runs in a job.
        job: Option<crate::slurm::Placement>,
    },
    End(End),
    /// A block of points, column by column (format 2).
    Batch(Batch),
    /// A record of a type this build does not know (written by a newer writer).
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub time: f64,
    pub kind: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl Event {
    pub fn warning(time: f64, message: impl Into<String>, data: Option<Value>) -> Event {
        Event { time, kind: "warning".into(), message: message.into(), data }
    }
}

/// A metric's definition, as a `define` record gives it (wandb's
/// `define_metric`). Only `metric` is required: a name, or a glob where `*`
/// stands for any run of characters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricDef {
    pub metric: String,
    /// The metric this one is plotted against by default.
    pub step_metric: Option<String>,
    /// What the run's summary keeps of it: `min`, `max`, `mean`, `last`,
    /// `best`, `none`, or several joined by commas.
    pub summary: Option<String>,
    /// `minimize` or `maximize`: what `best` means.
    pub goal: Option<String>,
    pub hidden: Option<bool>,
    /// Whether its points pair with the step metric's latest value at or
    /// before their step (wandb's default) rather than at the same step only.
    pub step_sync: Option<bool>,
}

impl MetricDef {
    /// Whether this definition is about `key`: its name, or a glob that fits it.
    pub fn matches(&self, key: &str) -> bool {
        glob_matches(&self.metric, key)
    }
}

/// Whether `key` fits `pattern`, where each `*` stands for any run of
/// characters (`/` included) and everything else for itself.
pub fn glob_matches(pattern: &str, key: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = key.strip_prefix(first) else { return false };
    let mut parts: Vec<&str> = parts.collect();
    let Some(last) = parts.pop() else { return rest.is_empty() };
    for part in parts {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The process that leads a run's group: its start time after boot (clock
/// ticks) and the boot it started in.
#[derive(Debug, Clone, PartialEq)]
pub struct Leader {
    pub start: u64,
    pub boot_id: Option<String>,
}

/// One point of a metric series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    pub step: i64,
    #[serde(serialize_with = "ser_num")]
    pub time: f64,
    #[serde(serialize_with = "ser_num")]
    pub value: f64,
}

/// Where a run is: waiting in the queue, running, or how it ended. A
/// status this version does not know (from a newer writer) is kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum RunStatus {
    Queued,
    Running,
    Finished,
    Failed,
    Stopped,
    /// Its supervisor or writer died without recording an end.
    Lost,
    Other(String),
}

impl RunStatus {
    pub fn as_str(&self) -> &str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Failed => "failed",
            RunStatus::Stopped => "stopped",
            RunStatus::Lost => "lost",
            RunStatus::Other(s) => s,
        }
    }

    /// Waiting or running: it has not ended.
    pub fn is_live(&self) -> bool {
        matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

impl From<&str> for RunStatus {
    fn from(s: &str) -> RunStatus {
        match s {
            "queued" => RunStatus::Queued,
            "running" => RunStatus::Running,
            "finished" => RunStatus::Finished,
            "failed" => RunStatus::Failed,
            "stopped" => RunStatus::Stopped,
            "lost" => RunStatus::Lost,
            other => RunStatus::Other(other.to_string()),
        }
    }
}

impl From<String> for RunStatus {
    fn from(s: String) -> RunStatus {
        RunStatus::from(s.as_str())
    }
}

impl From<RunStatus> for String {
    fn from(s: RunStatus) -> String {
        s.as_str().to_string()
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct End {
    pub time: f64,
    pub status: RunStatus,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How a command ended, in words: `exit code 3`, `killed by SIGTERM`, or
/// `no exit code`. Every message about a run's end says it so.
pub fn how_ended(exit_code: Option<i32>, signal: Option<i32>) -> String {
    match (exit_code, signal) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!("killed by {}", crate::sys::proc::signal_name(s)),
        (None, None) => "no exit code".into(),
    }
}

/// The exit code a shell gives a command that ended so: its own, 128 + the
/// signal that killed it, or 1.
pub fn shell_code(exit_code: Option<i32>, signal: Option<i32>) -> i32 {
    match (exit_code, signal) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        (None, None) => 1,
    }
}

/// The fields of every record type; which apply depends on `t`.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    t: Cow<'a, str>,
    step: Option<Step>,
    time: Option<Scalar>,
    n: Option<u64>,
    #[serde(borrow)]
    dstep: Option<&'a RawValue>,
    dt_us: Option<Vec<i64>>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    name: Option<String>,
    tags: Option<Vec<String>>,
    // Read only by the records they belong to: a field of the same name on
    // another record, whatever its type, is ignored like any unknown field.
    #[serde(borrow)]
    project: Option<&'a RawValue>,
    #[serde(borrow)]
    group: Option<&'a RawValue>,
    #[serde(borrow)]
    job_type: Option<&'a RawValue>,
    #[serde(borrow)]
    notes: Option<&'a RawValue>,
    #[serde(borrow)]
    metric: Option<&'a RawValue>,
    #[serde(borrow)]
    step_metric: Option<&'a RawValue>,
    #[serde(borrow)]
    summary: Option<&'a RawValue>,
    #[serde(borrow)]
    goal: Option<&'a RawValue>,
    #[serde(borrow)]
    hidden: Option<&'a RawValue>,
    #[serde(borrow)]
    step_sync: Option<&'a RawValue>,
    #[serde(borrow)]
    job: Option<&'a RawValue>,
    kind: Option<String>,
    message: Option<String>,
    pid: Option<u32>,
    child_pid: Option<u32>,
    pgid: Option<i32>,
    leader_start: Option<u64>,
    boot_id: Option<String>,
    status: Option<String>,
    exit_code: Option<i32>,
    signal: Option<i32>,
    reason: Option<String>,
}

impl Record {
    /// Parses one line (without its newline). The error says what is wrong.
    pub fn parse(line: &str) -> Result<Record, String> {
        match serde_json::from_str::<Line>(line) {
            Ok(l) => Record::from_line(l),
            Err(first) => {
                // Python and JavaScript write bare NaN/Infinity; accept them.
                let fixed = quote_bare_non_finite(line).ok_or_else(|| first.to_string())?;
                let l = serde_json::from_str::<Line>(&fixed).map_err(|e| e.to_string())?;
                Record::from_line(l)
            }
        }
    }

    fn from_line(l: Line) -> Result<Record, String> {
        let time = l.time.and_then(Scalar::number).unwrap_or(f64::NAN);
        let object = |raw: Option<&RawValue>| -> Result<Map<String, Value>, String> {
            match raw {
                None => Ok(Map::new()),
                Some(r) => serde_json::from_str(r.get()).map_err(|e| format!("data: {e}")),
            }
        };
        Ok(match l.t.as_ref() {
            "log" => {
                let step = l.step.ok_or("log record without a step")?.exact()?;
                let raw = l.data.ok_or("log record without data")?;
                let metrics = serde_json::from_str::<Metrics>(raw.get()).map_err(|e| format!("data: {e}"))?;
                Record::Log { step, time, metrics }
            }
            "config" => Record::Config { time, data: object(l.data)? },
            "summary" => Record::Summary { time, data: object(l.data)? },
            "meta" => Record::Meta {
                time,
                name: l.name,
                tags: l.tags.unwrap_or_default(),
                project: field("project", l.project)?,
                group: field("group", l.group)?,
                job_type: field("job_type", l.job_type)?,
                notes: field("notes", l.notes)?,
            },
            "define" => {
                let metric: String = field("metric", l.metric)?.ok_or("define record without a metric")?;
                if metric.is_empty() {
                    return Err("define record with an empty metric".into());
                }
                let goal: Option<String> = field("goal", l.goal)?;
                if let Some(g) = goal.as_deref().filter(|g| !matches!(*g, "minimize" | "maximize")) {
                    return Err(format!("goal {g:?} is neither \"minimize\" nor \"maximize\""));
                }
                let def = MetricDef {
                    metric,
                    step_metric: field("step_metric", l.step_metric)?,
                    summary: field("summary", l.summary)?,
                    goal,
                    hidden: field("hidden", l.hidden)?,
                    step_sync: field("step_sync", l.step_sync)?,
                };
                Record::Define { time, def }
            }
            "event" => Record::Event(Event {
                time,
                kind: l.kind.unwrap_or_else(|| "info".into()),
                message: l.message.unwrap_or_default(),
                data: match l.data {
                    Some(r) => Some(serde_json::from_str(r.get()).map_err(|e| e.to_string())?),
                    None => None,
                },
            }),
            "queued" => Record::Queued { time, pid: l.pid.ok_or("queued record without a pid")? },
            "start" => Record::Start {
                time,
                pid: l.pid,
                child_pid: l.child_pid,
                pgid: l.pgid,
                leader: l.leader_start.map(|start| Leader { start, boot_id: l.boot_id }),
                job: field("job", l.job)?,
            },
            "end" => Record::End(End {
                time,
                status: l.status.ok_or("end record without a status")?.into(),
                exit_code: l.exit_code,
                signal: l.signal,
                reason: l.reason,
            }),
            "batch" => Record::Batch(Batch::from_fields(l.n, l.step, l.dstep, Some(time), l.dt_us, l.data)?),
            _ => Record::Unknown,
        })
    }

    /// When the record was written, if it says.
    pub fn time(&self) -> Option<f64> {
        match self {
            Record::Log { time, .. }
            | Record::Config { time, .. }
            | Record::Summary { time, .. }
            | Record::Meta { time, .. }
            | Record::Define { time, .. }
            | Record::Start { time, .. }
            | Record::Queued { time, .. } => Some(*time),
            Record::Event(e) => Some(e.time),
            Record::End(e) => Some(e.time),
            Record::Batch(b) => Some(b.last_time()),
            Record::Unknown => None,
        }
    }

    /// The record with its time set to `time` (a batch's points keep their
    /// own times; [`Record::Unknown`] has none).
    pub fn with_time(mut self, time: f64) -> Record {
        match &mut self {
            Record::Log { time: t, .. }
            | Record::Config { time: t, .. }
            | Record::Summary { time: t, .. }
            | Record::Meta { time: t, .. }
            | Record::Define { time: t, .. }
            | Record::Start { time: t, .. }
            | Record::Queued { time: t, .. }
            | Record::Event(Event { time: t, .. })
            | Record::End(End { time: t, .. }) => *t = time,
            Record::Batch(_) | Record::Unknown => {}
        }
        self
    }

    /// The record as one line, newline included.
    pub fn to_line(&self) -> String {
        let mut line = match self {
            Record::Log { step, time, metrics } => {
                let mut s = format!("{{\"t\":\"log\",\"step\":{step},\"time\":{},\"data\":{{", json(&Num(*time)));
                for (i, (k, v)) in metrics.values.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    s.push_str(&json(k));
                    s.push(':');
                    s.push_str(&json(&Num(*v)));
                }
                s.push_str("}}");
                s
            }
            Record::Config { time, data } => tagged("config", *time, &[("data", json(data))]),
            Record::Summary { time, data } => tagged("summary", *time, &[("data", json(data))]),
            Record::Meta { time, name, tags, project, group, job_type, notes } => {
                let mut fields = vec![("name", json(name)), ("tags", json(tags))];
                for (key, value) in [("project", project), ("group", group), ("job_type", job_type), ("notes", notes)] {
                    if value.is_some() {
                        fields.push((key, json(value)));
                    }
                }
                tagged("meta", *time, &fields)
            }
            Record::Define { time, def } => {
                let mut fields = vec![("metric", json(&def.metric))];
                for (key, value) in [("step_metric", &def.step_metric), ("summary", &def.summary), ("goal", &def.goal)]
                {
                    if value.is_some() {
                        fields.push((key, json(value)));
                    }
                }
                for (key, value) in [("hidden", def.hidden), ("step_sync", def.step_sync)] {
                    if let Some(v) = value {
                        fields.push((key, json(&v)));
                    }
                }
                tagged("define", *time, &fields)
            }
            Record::Event(e) => with_type("event", e),
            Record::Start { time, pid, child_pid, pgid, leader, job } => {
                let mut fields = vec![("pid", json(pid)), ("child_pid", json(child_pid)), ("pgid", json(pgid))];
                if let Some(l) = leader {
                    fields.push(("leader_start", json(&l.start)));
                    if let Some(b) = &l.boot_id {
                        fields.push(("boot_id", json(b)));
                    }
                }
                if let Some(job) = job {
                    fields.push(("job", json(job)));
                }
                tagged("start", *time, &fields)
            }
            Record::Queued { time, pid } => tagged("queued", *time, &[("pid", json(pid))]),
            Record::End(e) => with_type("end", e),
            Record::Batch(b) => b.to_line(),
            Record::Unknown => String::from("{\"t\":\"unknown\"}"),
        };
        line.push('\n');
        line
    }
}

/// A field read only for the record it belongs to: absent or `null` is
/// None, a value of another type makes the line malformed, named.
fn field<T: serde::de::DeserializeOwned>(name: &str, raw: Option<&RawValue>) -> Result<Option<T>, String> {
    match raw {
        None => Ok(None),
        Some(r) => serde_json::from_str::<Option<T>>(r.get()).map_err(|e| format!("{name}: {e}")),
    }
}

fn json<T: Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).expect("records serialise")
}

fn tagged(t: &str, time: f64, fields: &[(&str, String)]) -> String {
    let mut s = format!("{{\"t\":\"{t}\",\"time\":{}", json(&Num(time)));
    for (k, v) in fields {
        s.push_str(&format!(",\"{k}\":{v}"));
    }
    s.push('}');
    s
}

fn with_type<T: Serialize>(t: &str, body: &T) -> String {
    let body = json(body);
    format!("{{\"t\":\"{t}\",{}", &body[1..])
}

/// Rewrites bare `NaN`, `Infinity` and `-Infinity` tokens (what Python's json
/// and JavaScript print) and `nan`, `inf` and `-inf` (Python's repr, C's
/// printf) outside strings as the documented strings. None when there is
/// nothing to rewrite.
pub fn quote_bare_non_finite(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len() + 16);
    let (mut in_str, mut escaped, mut changed, mut i, mut copied) = (false, false, false, 0, 0);
    while i < b.len() {
        let c = b[i];
        if in_str {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        let token = [
            ("-Infinity", "\"-Infinity\""),
            ("Infinity", "\"Infinity\""),
            ("NaN", "\"NaN\""),
            ("-inf", "\"-Infinity\""),
            ("inf", "\"Infinity\""),
            ("nan", "\"NaN\""),
        ]
        .into_iter()
        .find(|(t, _)| b[i..].starts_with(t.as_bytes()));
        match (c, token) {
            (b'"', _) => {
                in_str = true;
                i += 1;
            }
            (_, Some((t, quoted))) => {
                out.push_str(&s[copied..i]);
                out.push_str(quoted);
                i += t.len();
                copied = i;
                changed = true;
            }
            _ => i += 1,
        }
    }
    out.push_str(&s[copied..]);
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_reads_back_as_written_even_one_this_version_does_not_know() {
        for text in ["queued", "running", "finished", "failed", "stopped", "lost", "preempted"] {
            let status = RunStatus::from(text);
            assert_eq!(status.as_str(), text);
            assert_eq!(serde_json::to_string(&status).unwrap(), format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<RunStatus>(&format!("\"{text}\"")).unwrap(), status);
        }
        assert_eq!(RunStatus::from("preempted"), RunStatus::Other("preempted".into()));
        assert!(RunStatus::Queued.is_live() && RunStatus::Running.is_live());
        assert!(!RunStatus::Lost.is_live() && !RunStatus::Other("x".into()).is_live());
    }

    fn log(step: i64, values: &[(&str, f64)]) -> Record {
        Record::Log {
            step,
            time: 1.5,
            metrics: Metrics { values: values.iter().map(|(k, v)| (k.to_string(), *v)).collect(), dropped: vec![] },
        }
    }

    #[test]
    fn non_finite_values_round_trip_as_strings() {
        let rec = log(3, &[("a", f64::INFINITY), ("b", f64::NEG_INFINITY), ("c", 0.1)]);
        let line = rec.to_line();
        assert_eq!(
            line,
            "{\"t\":\"log\",\"step\":3,\"time\":1.5,\"data\":{\"a\":\"Infinity\",\"b\":\"-Infinity\",\"c\":0.1}}\n"
        );
        assert_eq!(Record::parse(line.trim_end()).unwrap(), rec);
        let nan = Record::parse(&log(1, &[("x", f64::NAN)]).to_line()).unwrap();
        let Record::Log { metrics, .. } = nan else { panic!() };
        assert!(metrics.values[0].1.is_nan());
    }

    #[test]
    fn bare_tokens_from_python_are_accepted() {
        let rec = Record::parse(
            r#"{"t":"log","step":1,"time":2.0,"data":{"NaN key":NaN,"i":Infinity,"j":-Infinity,"s":"NaN","p":nan,"q":-inf}}"#,
        )
        .unwrap();
        let Record::Log { metrics, .. } = rec else { panic!() };
        assert_eq!(metrics.values[0].0, "NaN key");
        assert!(metrics.values[0].1.is_nan());
        assert_eq!(metrics.values[1].1, f64::INFINITY);
        assert_eq!(metrics.values[2].1, f64::NEG_INFINITY);
        assert!(metrics.values[3].1.is_nan());
        assert!(metrics.values[4].1.is_nan());
        assert_eq!(metrics.values[5].1, f64::NEG_INFINITY);
    }

    #[test]
    fn non_numbers_are_dropped_and_named() {
        let rec = Record::parse(r#"{"t":"log","step":1,"data":{"a":1,"img":{"x":[1,2]},"s":"hi","n":null}}"#).unwrap();
        let Record::Log { metrics, .. } = rec else { panic!() };
        assert_eq!(metrics.values, vec![("a".to_string(), 1.0)]);
        assert_eq!(metrics.dropped, vec!["img", "s", "n"]);
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        assert!(Record::parse("{\"t\":\"log\",\"step\":1.5,\"data\":{}}").unwrap_err().contains("not an integer"));
        assert!(Record::parse("{\"t\":\"log\",\"data\":{}}").unwrap_err().contains("without a step"));
        assert!(Record::parse("{\"t\":\"log\",\"step\":1,\"da").is_err());
        assert_eq!(Record::parse("{\"t\":\"future\",\"x\":1}").unwrap(), Record::Unknown);
    }

    #[test]
    fn steps_are_exact_64_bit_integers() {
        for step in [(1i64 << 53) + 1, 1 << 62, i64::MAX, i64::MIN, 1_796_104_428_665_247_500, -1] {
            let rec = log(step, &[("a", 1.0)]);
            assert_eq!(Record::parse(rec.to_line().trim_end()).unwrap(), rec, "step {step}");
        }
        let line = |s: &str| format!("{{\"t\":\"log\",\"step\":{s},\"time\":1,\"data\":{{\"a\":1}}}}");
        assert!(matches!(Record::parse(&line("1e3")).unwrap(), Record::Log { step: 1000, .. }));
        let too_big = Record::parse(&line("9223372036854775808")).unwrap_err();
        assert!(too_big.contains("outside the signed 64-bit range"), "{too_big}");
        assert!(Record::parse(&line("-1e19")).unwrap_err().contains("outside the signed 64-bit range"));
        // Just past either end: not rounded into the range on the way through f64.
        for past in ["-9223372036854775809", "-9223372036854776000", "9223372036854775808"] {
            assert!(Record::parse(&line(past)).unwrap_err().contains("outside the signed 64-bit range"), "{past}");
        }
        assert!(Record::parse(&line("\"5\"")).unwrap_err().contains("expected an integer step"));
        assert!(Record::parse(&line("2.5")).unwrap_err().contains("step 2.5 is not an integer"));
    }

    #[test]
    fn other_records_round_trip() {
        let records = vec![
            Record::Config { time: 1.0, data: serde_json::from_str(r#"{"lr":0.1,"opt":{"b":[1,2]}}"#).unwrap() },
            Record::Meta {
                time: 1.0,
                name: Some("x".into()),
                tags: vec!["a".into()],
                project: None,
                group: None,
                job_type: None,
                notes: None,
            },
            Record::Meta {
                time: 1.0,
                name: None,
                tags: vec![],
                project: Some("owt".into()),
                group: Some("sweep-1".into()),
                job_type: Some("train".into()),
                notes: Some("a \"note\"".into()),
            },
            Record::Define {
                time: 1.0,
                def: MetricDef {
                    metric: "train/*".into(),
                    step_metric: Some("train/global_step".into()),
                    summary: Some("min,max".into()),
                    goal: Some("minimize".into()),
                    hidden: Some(false),
                    step_sync: Some(true),
                },
            },
            Record::Define {
                time: 1.0,
                def: MetricDef {
                    metric: "loss".into(),
                    step_metric: None,
                    summary: None,
                    goal: None,
                    hidden: None,
                    step_sync: None,
                },
            },
            Record::Event(Event::warning(2.0, "bad \"line\"", Some(Value::from("##labmate {")))),
            Record::Start { time: 3.0, pid: Some(1), child_pid: Some(2), pgid: Some(2), leader: None, job: None },
            Record::Start {
                time: 3.0,
                pid: Some(1),
                child_pid: Some(2),
                pgid: Some(2),
                leader: Some(Leader { start: 12345, boot_id: Some("b-1".into()) }),
                job: Some(crate::slurm::Placement {
                    scheduler: "slurm".into(),
                    job_id: "12_3".into(),
                    node: Some("gpu-07".into()),
                    gpus: Some("0,1".into()),
                    partition: Some("gpu".into()),
                }),
            },
            Record::End(End { time: 4.0, status: "failed".into(), exit_code: None, signal: Some(9), reason: None }),
        ];
        for r in records {
            assert_eq!(Record::parse(r.to_line().trim_end()).unwrap(), r);
        }
    }

    #[test]
    fn a_define_needs_a_metric_and_fields_of_their_types() {
        let line = r#"{"t":"define","time":1,"metric":"train/*","step_metric":"train/global_step","summary":"min","goal":"minimize","hidden":false,"step_sync":true}"#;
        let Record::Define { def, .. } = Record::parse(line).unwrap() else { panic!() };
        assert_eq!(def.step_metric.as_deref(), Some("train/global_step"));
        assert_eq!((def.hidden, def.step_sync), (Some(false), Some(true)));
        let Record::Define { def, .. } = Record::parse(r#"{"t":"define","metric":"loss","goal":null}"#).unwrap() else {
            panic!()
        };
        assert_eq!((def.metric.as_str(), def.goal), ("loss", None));
        for (line, why) in [
            (r#"{"t":"define","time":1}"#, "define record without a metric"),
            (r#"{"t":"define","metric":""}"#, "define record with an empty metric"),
            (r#"{"t":"define","metric":3}"#, "metric: invalid type: integer `3`, expected a string"),
            (r#"{"t":"define","metric":"a","hidden":"no"}"#, "hidden: invalid type: string \"no\", expected a boolean"),
            (r#"{"t":"define","metric":"a","goal":"up"}"#, "goal \"up\" is neither \"minimize\" nor \"maximize\""),
            (r#"{"t":"meta","project":["a"]}"#, "project: invalid type: sequence, expected a string"),
        ] {
            let err = Record::parse(line).unwrap_err();
            assert!(err.starts_with(why), "{line}: {err}");
        }
        // On another record, a field of these names is an unknown field: ignored.
        let log = r#"{"t":"log","step":1,"data":{"a":1},"hidden":"yes","project":7,"metric":null}"#;
        assert!(matches!(Record::parse(log).unwrap(), Record::Log { step: 1, .. }));
    }

    #[test]
    fn a_glob_star_stands_for_any_run_of_characters() {
        for (pattern, key, fits) in [
            ("loss", "loss", true),
            ("loss", "loss2", false),
            ("*", "", true),
            ("*", "train/a/b", true),
            ("train/*", "train/loss", true),
            ("train/*", "train/x/y", true),
            ("train/*", "val/loss", false),
            ("train/*", "train", false),
            ("*/loss", "val/loss", true),
            ("*/loss", "val/loss/x", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "acb", false),
            ("ab*b", "ab", false),
            ("ab*b", "abb", true),
            ("**", "x", true),
        ] {
            assert_eq!(glob_matches(pattern, key), fits, "{pattern} on {key}");
        }
    }

    #[test]
    fn an_end_is_told_by_its_exit_code_else_its_signal() {
        assert_eq!(how_ended(Some(3), None), "exit code 3");
        assert_eq!(how_ended(None, Some(libc::SIGTERM)), "killed by SIGTERM");
        assert_eq!(how_ended(Some(0), Some(libc::SIGKILL)), "exit code 0");
        assert_eq!(how_ended(None, None), "no exit code");
        assert_eq!(shell_code(Some(3), None), 3);
        assert_eq!(shell_code(None, Some(libc::SIGKILL)), 137);
        assert_eq!(shell_code(None, None), 1);
    }
}
