//! TensorBoard's `Event` and `Summary` protobuf messages, the fields the
//! reader keeps (numbered as in tensorboard's `event.proto`,
//! `summary.proto`, `tensor.proto` and the hparams plugin's
//! `plugin_data.proto`), and what one event holds for a run: scalars, the
//! hparams, and what is skipped. Fields not declared here are skipped by
//! the decoder without being copied (graphs, images, histograms' buckets).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use prost::Message;
use serde_json::{Map, Value};

use crate::record::Num;

#[derive(Clone, PartialEq, Message)]
struct Event {
    #[prost(double, tag = "1")]
    wall_time: f64,
    #[prost(int64, tag = "2")]
    step: i64,
    #[prost(message, optional, tag = "5")]
    summary: Option<Summary>,
}

#[derive(Clone, PartialEq, Message)]
struct Summary {
    #[prost(message, repeated, tag = "1")]
    value: Vec<SummaryValue>,
}

/// `Summary.Value`: its `value` oneof as one optional field per case.
#[derive(Clone, PartialEq, Message)]
struct SummaryValue {
    #[prost(string, tag = "1")]
    tag: String,
    #[prost(message, optional, tag = "9")]
    metadata: Option<SummaryMetadata>,
    #[prost(float, optional, tag = "2")]
    simple_value: Option<f32>,
    #[prost(message, optional, tag = "3")]
    obsolete_old_style_histogram: Option<Opaque>,
    #[prost(message, optional, tag = "4")]
    image: Option<Opaque>,
    #[prost(message, optional, tag = "5")]
    histo: Option<Opaque>,
    #[prost(message, optional, tag = "6")]
    audio: Option<Opaque>,
    #[prost(message, optional, tag = "8")]
    tensor: Option<TensorProto>,
}

/// A message whose content is not kept: decoding it only skips its bytes.
#[derive(Clone, PartialEq, Message)]
struct Opaque {}

#[derive(Clone, PartialEq, Message)]
struct SummaryMetadata {
    #[prost(message, optional, tag = "1")]
    plugin_data: Option<PluginData>,
}

#[derive(Clone, PartialEq, Message)]
struct PluginData {
    #[prost(string, tag = "1")]
    plugin_name: String,
    #[prost(bytes = "vec", tag = "2")]
    content: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct TensorProto {
    #[prost(int32, tag = "1")]
    dtype: i32,
    #[prost(bytes = "vec", tag = "4")]
    tensor_content: Vec<u8>,
    /// Each an f16 (or bfloat16) in its low 16 bits.
    #[prost(int32, repeated, tag = "13")]
    half_val: Vec<i32>,
    #[prost(float, repeated, tag = "5")]
    float_val: Vec<f32>,
    #[prost(double, repeated, tag = "6")]
    double_val: Vec<f64>,
    #[prost(int32, repeated, tag = "7")]
    int_val: Vec<i32>,
    #[prost(int64, repeated, tag = "10")]
    int64_val: Vec<i64>,
}

#[derive(Clone, PartialEq, Message)]
struct HParamsPluginData {
    #[prost(message, optional, tag = "3")]
    session_start_info: Option<SessionStartInfo>,
}

#[derive(Clone, PartialEq, Message)]
struct SessionStartInfo {
    #[prost(btree_map = "string, message", tag = "1")]
    hparams: BTreeMap<String, ProtoValue>,
}

/// `google.protobuf.Value`, the kinds an hparam takes.
#[derive(Clone, PartialEq, Message)]
struct ProtoValue {
    #[prost(double, optional, tag = "2")]
    number_value: Option<f64>,
    #[prost(string, optional, tag = "3")]
    string_value: Option<String>,
    #[prost(bool, optional, tag = "4")]
    bool_value: Option<bool>,
}

const DT_FLOAT: i32 = 1;
const DT_DOUBLE: i32 = 2;
const DT_INT32: i32 = 3;
const DT_INT64: i32 = 9;
const DT_BFLOAT16: i32 = 14;
const DT_HALF: i32 = 19;

const HPARAMS_PLUGIN: &str = "hparams";
const SESSION_START_INFO: &str = "_hparams_/session_start_info";

/// What an event's summary holds, value by value.
#[derive(Debug, PartialEq)]
pub enum Item<'a> {
    Scalar {
        tag: &'a str,
        value: f64,
    },
    /// The hparams of a session start: the run's config.
    Config(Map<String, Value>),
    /// A value not kept: `histogram`, `image`, `audio`, `text`, or `other:<plugin>`.
    Skipped {
        kind: Cow<'static, str>,
        tag: &'a str,
    },
    /// A value that says it is something it cannot be read as.
    Unreadable {
        tag: &'a str,
        why: String,
    },
}

/// When an event happened.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stamp {
    pub wall_time: f64,
    pub step: i64,
}

/// Decodes a run's events in order. A tag's plugin comes with the first
/// event that carries its metadata (writers send it once per tag and
/// file), so it is remembered for the events after it.
#[derive(Debug, Default, Clone)]
pub struct Decoder {
    plugins: HashMap<String, String>,
}

impl Decoder {
    /// A decoder that already knows these tags' plugins (from an earlier read).
    pub fn with_plugins(plugins: HashMap<String, String>) -> Decoder {
        Decoder { plugins }
    }

    /// Each tag's plugin, as far as known.
    pub fn plugins(&self) -> &HashMap<String, String> {
        &self.plugins
    }

    /// Decodes one event record and hands what it holds to `each`, with the
    /// event's stamp.
    pub fn event(&mut self, data: &[u8], mut each: impl FnMut(Stamp, Item<'_>)) -> Result<Stamp, prost::DecodeError> {
        let event = Event::decode(data)?;
        let stamp = Stamp { wall_time: event.wall_time, step: event.step };
        for v in event.summary.iter().flat_map(|s| &s.value) {
            let given = v.metadata.as_ref().and_then(|m| m.plugin_data.as_ref());
            if let Some(p) = given.filter(|p| !p.plugin_name.is_empty())
                && !self.plugins.contains_key(&v.tag)
            {
                self.plugins.insert(v.tag.clone(), p.plugin_name.clone());
            }
            let tag = v.tag.as_str();
            let plugin = given.map(|p| p.plugin_name.as_str()).or_else(|| self.plugins.get(tag).map(String::as_str));
            if plugin == Some(HPARAMS_PLUGIN) {
                if tag == SESSION_START_INFO {
                    match hparams(given.map_or(&[][..], |p| &p.content)) {
                        Ok(config) => each(stamp, Item::Config(config)),
                        Err(why) => each(stamp, Item::Unreadable { tag, why }),
                    }
                }
                continue;
            }
            let skipped = |kind: &'static str| Item::Skipped { kind: Cow::Borrowed(kind), tag };
            let item = if let Some(x) = v.simple_value {
                Item::Scalar { tag, value: f64::from(x) }
            } else if v.histo.is_some() || v.obsolete_old_style_histogram.is_some() {
                skipped("histogram")
            } else if v.image.is_some() {
                skipped("image")
            } else if v.audio.is_some() {
                skipped("audio")
            } else if let Some(t) = &v.tensor {
                match plugin.unwrap_or("") {
                    "scalars" => match scalar(t) {
                        Ok(value) => Item::Scalar { tag, value },
                        Err(why) => Item::Unreadable { tag, why },
                    },
                    "histograms" => skipped("histogram"),
                    "images" => skipped("image"),
                    "audio" => skipped("audio"),
                    "text" => skipped("text"),
                    "" => skipped("other:tensor"),
                    other => Item::Skipped { kind: Cow::Owned(format!("other:{other}")), tag },
                }
            } else {
                continue;
            };
            each(stamp, item);
        }
        Ok(stamp)
    }
}

/// The one number a scalars-plugin tensor holds.
fn scalar(t: &TensorProto) -> Result<f64, String> {
    let content = &t.tensor_content;
    let one = |n: usize| if n == 1 { Ok(()) } else { Err(format!("a scalar tensor with {n} values")) };
    let le = |width: usize| -> Result<&[u8], String> {
        if content.len() == width {
            Ok(content)
        } else {
            Err(format!("{} bytes of tensor content where one value takes {width}", content.len()))
        }
    };
    let from_content = !content.is_empty();
    let half_bits = || -> Result<u16, String> {
        if from_content {
            Ok(u16::from_le_bytes(le(2)?.try_into().expect("2 bytes")))
        } else {
            one(t.half_val.len())?;
            Ok(t.half_val[0] as u16)
        }
    };
    Ok(match t.dtype {
        DT_FLOAT if from_content => f64::from(f32::from_le_bytes(le(4)?.try_into().expect("4 bytes"))),
        DT_FLOAT => one(t.float_val.len()).map(|_| f64::from(t.float_val[0]))?,
        DT_DOUBLE if from_content => f64::from_le_bytes(le(8)?.try_into().expect("8 bytes")),
        DT_DOUBLE => one(t.double_val.len()).map(|_| t.double_val[0])?,
        DT_INT32 if from_content => f64::from(i32::from_le_bytes(le(4)?.try_into().expect("4 bytes"))),
        DT_INT32 => one(t.int_val.len()).map(|_| f64::from(t.int_val[0]))?,
        DT_INT64 if from_content => i64::from_le_bytes(le(8)?.try_into().expect("8 bytes")) as f64,
        DT_INT64 => one(t.int64_val.len()).map(|_| t.int64_val[0] as f64)?,
        DT_HALF => f16(half_bits()?),
        DT_BFLOAT16 => f64::from(f32::from_bits(u32::from(half_bits()?) << 16)),
        other => return Err(format!("a scalar tensor of data type {other}")),
    })
}

/// An IEEE 754 half-precision number.
fn f16(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let fraction = f64::from(bits & 0x3ff);
    match exponent {
        0 => sign * fraction * 2f64.powi(-24),
        0x1f if fraction == 0.0 => sign * f64::INFINITY,
        0x1f => f64::NAN,
        e => sign * (1.0 + fraction / 1024.0) * 2f64.powi(e - 15),
    }
}

/// The hparams of the hparams plugin's session start info, as config.
fn hparams(content: &[u8]) -> Result<Map<String, Value>, String> {
    let data = HParamsPluginData::decode(content).map_err(|e| format!("hparams plugin data: {e}"))?;
    let mut config = Map::new();
    for (key, v) in data.session_start_info.map(|s| s.hparams).unwrap_or_default() {
        let value = match (v.number_value, v.string_value, v.bool_value) {
            (Some(x), _, _) => number(x),
            (_, Some(s), _) => Value::String(s),
            (_, _, Some(b)) => Value::Bool(b),
            _ => Value::Null,
        };
        config.insert(key, value);
    }
    Ok(config)
}

/// An hparam's number as config holds it: whole numbers as integers (the
/// plugin stores every number as a double), non-finite ones as the strings
/// the record format uses.
fn number(x: f64) -> Value {
    const EXACT: f64 = (1u64 << 53) as f64;
    if x.fract() == 0.0 && x.abs() <= EXACT {
        return Value::from(x as i64);
    }
    serde_json::to_value(Num(x)).unwrap_or(Value::Null)
}

/// An event holding one simple value, as writers send scalars.
#[cfg(test)]
pub fn scalar_event(wall_time: f64, step: i64, tag: &str, value: f32) -> Vec<u8> {
    let v = SummaryValue { tag: tag.into(), simple_value: Some(value), ..Default::default() };
    Event { wall_time, step, summary: Some(Summary { value: vec![v] }) }.encode_to_vec()
}

/// An event holding a scalars-plugin tensor of two values: not a scalar.
#[cfg(test)]
pub fn two_value_event(wall_time: f64, step: i64, tag: &str) -> Vec<u8> {
    let plugin_data = Some(PluginData { plugin_name: "scalars".into(), content: vec![] });
    let tensor = TensorProto { dtype: DT_FLOAT, float_val: vec![1.0, 2.0], ..Default::default() };
    let v = SummaryValue {
        tag: tag.into(),
        metadata: Some(SummaryMetadata { plugin_data }),
        tensor: Some(tensor),
        ..Default::default()
    };
    Event { wall_time, step, summary: Some(Summary { value: vec![v] }) }.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(tag: &str) -> SummaryValue {
        SummaryValue { tag: tag.into(), ..Default::default() }
    }

    fn plugin(name: &str, content: Vec<u8>) -> Option<SummaryMetadata> {
        Some(SummaryMetadata { plugin_data: Some(PluginData { plugin_name: name.into(), content }) })
    }

    fn event(values: Vec<SummaryValue>) -> Vec<u8> {
        Event { wall_time: 1.5, step: 7, summary: Some(Summary { value: values }) }.encode_to_vec()
    }

    fn items(d: &mut Decoder, data: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        d.event(data, |_, i| out.push(format!("{i:?}"))).unwrap();
        out
    }

    fn tensor(dtype: i32) -> TensorProto {
        TensorProto { dtype, ..Default::default() }
    }

    #[test]
    fn simple_values_and_the_stamp() {
        let mut v = value("loss");
        v.simple_value = Some(0.25);
        let mut nan = value("nan");
        nan.simple_value = Some(f32::NAN);
        let mut got = Vec::new();
        let stamp = Decoder::default()
            .event(&event(vec![v, nan]), |s, i| {
                assert_eq!(s, Stamp { wall_time: 1.5, step: 7 });
                got.push(format!("{i:?}"))
            })
            .unwrap();
        assert_eq!(stamp, Stamp { wall_time: 1.5, step: 7 });
        assert_eq!(got, ["Scalar { tag: \"loss\", value: 0.25 }", "Scalar { tag: \"nan\", value: NaN }"]);
    }

    #[test]
    fn a_tags_plugin_is_remembered_from_its_first_metadata() {
        let mut d = Decoder::default();
        let mut first = value("acc");
        first.metadata = plugin("scalars", vec![]);
        first.tensor = Some(TensorProto { float_val: vec![0.5], ..tensor(DT_FLOAT) });
        let mut later = value("acc");
        later.tensor = Some(TensorProto { double_val: vec![0.75], ..tensor(DT_DOUBLE) });
        let mut unknown = value("blob");
        unknown.tensor = Some(TensorProto { float_val: vec![1.0], ..tensor(DT_FLOAT) });
        assert_eq!(items(&mut d, &event(vec![first])), ["Scalar { tag: \"acc\", value: 0.5 }"]);
        assert_eq!(
            items(&mut d, &event(vec![later, unknown])),
            ["Scalar { tag: \"acc\", value: 0.75 }", "Skipped { kind: \"other:tensor\", tag: \"blob\" }"]
        );
        assert_eq!(d.plugins().get("acc").map(String::as_str), Some("scalars"));
    }

    #[test]
    fn every_scalar_dtype_from_values_and_from_content() {
        let cases: Vec<(TensorProto, f64)> = vec![
            (TensorProto { float_val: vec![1.5], ..tensor(DT_FLOAT) }, 1.5),
            (TensorProto { tensor_content: 2.5f32.to_le_bytes().to_vec(), ..tensor(DT_FLOAT) }, 2.5),
            (TensorProto { double_val: vec![0.1], ..tensor(DT_DOUBLE) }, 0.1),
            (TensorProto { tensor_content: 0.2f64.to_le_bytes().to_vec(), ..tensor(DT_DOUBLE) }, 0.2),
            (TensorProto { int_val: vec![-3], ..tensor(DT_INT32) }, -3.0),
            (TensorProto { tensor_content: (-4i32).to_le_bytes().to_vec(), ..tensor(DT_INT32) }, -4.0),
            (TensorProto { int64_val: vec![1 << 40], ..tensor(DT_INT64) }, (1u64 << 40) as f64),
            (TensorProto { tensor_content: 5i64.to_le_bytes().to_vec(), ..tensor(DT_INT64) }, 5.0),
            // 0x3c00 is 1.0, 0xc000 is -2.0 in half precision.
            (TensorProto { half_val: vec![0x3c00], ..tensor(DT_HALF) }, 1.0),
            (TensorProto { tensor_content: 0xc000u16.to_le_bytes().to_vec(), ..tensor(DT_HALF) }, -2.0),
            // bfloat16 is the high half of an f32: 0x3fc0 is 1.5.
            (TensorProto { half_val: vec![0x3fc0], ..tensor(DT_BFLOAT16) }, 1.5),
            (TensorProto { tensor_content: 0x4020u16.to_le_bytes().to_vec(), ..tensor(DT_BFLOAT16) }, 2.5),
        ];
        for (t, want) in cases {
            assert_eq!(scalar(&t), Ok(want), "{t:?}");
        }
        assert!(
            scalar(&TensorProto { float_val: vec![1.0, 2.0], ..tensor(DT_FLOAT) }).unwrap_err().contains("2 values")
        );
        assert!(
            scalar(&TensorProto { tensor_content: vec![0; 3], ..tensor(DT_FLOAT) }).unwrap_err().contains("3 bytes")
        );
        assert!(scalar(&tensor(7)).unwrap_err().contains("data type 7"));
    }

    #[test]
    fn half_precision_specials() {
        assert_eq!(f16(0x7c00), f64::INFINITY);
        assert_eq!(f16(0xfc00), f64::NEG_INFINITY);
        assert!(f16(0x7e00).is_nan());
        assert_eq!(f16(0x0001), 2f64.powi(-24), "the smallest subnormal");
        assert_eq!(f16(0x7bff), 65504.0, "the largest finite");
        assert_eq!(f16(0x8000), 0.0);
    }

    #[test]
    fn hparams_become_config_and_the_rest_is_skipped_by_kind() {
        let mut hp = BTreeMap::new();
        hp.insert("lr".to_string(), ProtoValue { number_value: Some(0.001), ..Default::default() });
        hp.insert("batch".to_string(), ProtoValue { number_value: Some(32.0), ..Default::default() });
        hp.insert("opt".to_string(), ProtoValue { string_value: Some("adam".into()), ..Default::default() });
        hp.insert("amp".to_string(), ProtoValue { bool_value: Some(true), ..Default::default() });
        let content = HParamsPluginData { session_start_info: Some(SessionStartInfo { hparams: hp }) }.encode_to_vec();
        let mut start = value(SESSION_START_INFO);
        start.metadata = plugin("hparams", content);
        let mut experiment = value("_hparams_/experiment");
        experiment.metadata = plugin("hparams", vec![]);
        let mut histo = value("w");
        histo.histo = Some(Opaque {});
        let mut image = value("img");
        image.image = Some(Opaque {});
        let mut text = value("note/text_summary");
        text.metadata = plugin("text", vec![]);
        text.tensor = Some(tensor(7));
        let mut pr = value("pr");
        pr.metadata = plugin("pr_curves", vec![]);
        pr.tensor = Some(tensor(DT_FLOAT));
        let mut got = Vec::new();
        Decoder::default()
            .event(&event(vec![start, experiment, histo, image, text, pr]), |_, i| {
                got.push(match i {
                    Item::Config(c) => Value::Object(c).to_string(),
                    Item::Skipped { kind, tag } => format!("{kind} {tag}"),
                    other => panic!("{other:?}"),
                })
            })
            .unwrap();
        assert_eq!(got[0], r#"{"amp":true,"batch":32,"lr":0.001,"opt":"adam"}"#);
        let skipped = &got[1..];
        assert_eq!(skipped, ["histogram w", "image img", "text note/text_summary", "other:pr_curves pr"]);
    }

    #[test]
    fn what_cannot_be_read_is_said() {
        let mut start = value(SESSION_START_INFO);
        start.metadata = plugin("hparams", vec![0xff, 0xff]);
        let mut two = value("s");
        two.metadata = plugin("scalars", vec![]);
        two.tensor = Some(TensorProto { float_val: vec![1.0, 2.0], ..tensor(DT_FLOAT) });
        let mut got = Vec::new();
        Decoder::default().event(&event(vec![start, two]), |_, i| got.push(format!("{i:?}"))).unwrap();
        assert!(got[0].starts_with("Unreadable { tag: \"_hparams_/session_start_info\", why: \"hparams plugin data"));
        assert!(got[1].contains("a scalar tensor with 2 values"), "{got:?}");
        assert!(Decoder::default().event(&[0x0a, 0x05, 0x01], |_, _| {}).is_err(), "not an event");
    }

    #[test]
    fn number_hparams() {
        assert_eq!(number(3.0), Value::from(3));
        assert_eq!(number(0.5), Value::from(0.5));
        assert_eq!(number(f64::INFINITY), Value::from("Infinity"));
        assert_eq!(number(1e300), Value::from(1e300));
    }
}
