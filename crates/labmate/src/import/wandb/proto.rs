//! The parts of wandb's `wandb_internal.proto` `Record` that an import
//! reads, with wandb's field numbers; the fields left out are skipped as
//! unknown ones are.

use prost::{Message, Oneof};

#[derive(Clone, PartialEq, Message)]
pub struct Record {
    #[prost(int64, tag = "1")]
    pub num: i64,
    #[prost(oneof = "RecordType", tags = "2, 3, 5, 7, 17, 18, 26")]
    pub record_type: Option<RecordType>,
}

// One lives at a time, while its record is applied: boxing the run record
// would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, PartialEq, Oneof)]
pub enum RecordType {
    #[prost(message, tag = "2")]
    History(HistoryRecord),
    #[prost(message, tag = "3")]
    Summary(SummaryRecord),
    #[prost(message, tag = "5")]
    Config(ConfigRecord),
    #[prost(message, tag = "7")]
    Stats(StatsRecord),
    #[prost(message, tag = "17")]
    Run(RunRecord),
    #[prost(message, tag = "18")]
    Exit(RunExitRecord),
    #[prost(message, tag = "26")]
    Environment(EnvironmentRecord),
}

#[derive(Clone, PartialEq, Message)]
pub struct HistoryRecord {
    #[prost(message, repeated, tag = "1")]
    pub item: Vec<HistoryItem>,
    #[prost(message, optional, tag = "2")]
    pub step: Option<HistoryStep>,
}

#[derive(Clone, PartialEq, Message)]
pub struct HistoryItem {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, repeated, tag = "2")]
    pub nested_key: Vec<String>,
    #[prost(string, tag = "16")]
    pub value_json: String,
    /// The typed form of the value that some writers send instead of
    /// `value_json`.
    #[prost(oneof = "TypedValue", tags = "3, 4, 5, 6, 7, 8")]
    pub value: Option<TypedValue>,
}

#[derive(Clone, PartialEq, Oneof)]
pub enum TypedValue {
    #[prost(int32, tag = "3")]
    Null(i32),
    #[prost(bool, tag = "4")]
    Boolean(bool),
    #[prost(sint64, tag = "5")]
    Integer(i64),
    #[prost(double, tag = "6")]
    Number(f64),
    #[prost(string, tag = "7")]
    Text(String),
    #[prost(string, tag = "8")]
    Json(String),
}

#[derive(Clone, PartialEq, Message)]
pub struct HistoryStep {
    #[prost(int64, tag = "1")]
    pub num: i64,
}

/// A summary's or config's change: `update` sets, `remove` takes away.
#[derive(Clone, PartialEq, Message)]
pub struct SummaryRecord {
    #[prost(message, repeated, tag = "1")]
    pub update: Vec<Item>,
    #[prost(message, repeated, tag = "2")]
    pub remove: Vec<Item>,
}

/// wandb's `ConfigRecord` has the same fields as its `SummaryRecord`.
pub type ConfigRecord = SummaryRecord;

/// `SummaryItem` and `ConfigItem`: a key (or a path of them) and a JSON value.
#[derive(Clone, PartialEq, Message)]
pub struct Item {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, repeated, tag = "2")]
    pub nested_key: Vec<String>,
    #[prost(string, tag = "16")]
    pub value_json: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct StatsRecord {
    #[prost(message, optional, tag = "2")]
    pub timestamp: Option<Timestamp>,
    #[prost(message, repeated, tag = "3")]
    pub item: Vec<StatsItem>,
}

#[derive(Clone, PartialEq, Message)]
pub struct StatsItem {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "16")]
    pub value_json: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct RunRecord {
    #[prost(string, tag = "1")]
    pub run_id: String,
    #[prost(string, tag = "2")]
    pub entity: String,
    #[prost(string, tag = "3")]
    pub project: String,
    #[prost(message, optional, tag = "4")]
    pub config: Option<ConfigRecord>,
    #[prost(message, optional, tag = "5")]
    pub summary: Option<SummaryRecord>,
    #[prost(string, tag = "6")]
    pub run_group: String,
    #[prost(string, tag = "7")]
    pub job_type: String,
    #[prost(string, tag = "8")]
    pub display_name: String,
    #[prost(string, tag = "9")]
    pub notes: String,
    #[prost(string, repeated, tag = "10")]
    pub tags: Vec<String>,
    #[prost(string, tag = "13")]
    pub host: String,
    #[prost(message, optional, tag = "17")]
    pub start_time: Option<Timestamp>,
    #[prost(message, optional, tag = "21")]
    pub git: Option<GitRepoRecord>,
}

#[derive(Clone, PartialEq, Message)]
pub struct RunExitRecord {
    #[prost(int32, tag = "1")]
    pub exit_code: i32,
    /// Seconds the run took.
    #[prost(int32, tag = "2")]
    pub runtime: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct EnvironmentRecord {
    #[prost(string, repeated, tag = "5")]
    pub args: Vec<String>,
    #[prost(string, tag = "6")]
    pub program: String,
    #[prost(message, optional, tag = "9")]
    pub git: Option<GitRepoRecord>,
    #[prost(string, tag = "12")]
    pub host: String,
    #[prost(string, tag = "13")]
    pub username: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct GitRepoRecord {
    #[prost(string, tag = "1")]
    pub remote_url: String,
    #[prost(string, tag = "2")]
    pub commit: String,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, PartialEq, Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Timestamp {
    pub fn seconds_f64(&self) -> f64 {
        self.seconds as f64 + f64::from(self.nanos) / 1e9
    }
}
