//! wandb's values as JSON: its `value_json` (Python's JSON, where NaN and
//! ±Infinity are bare words), its YAML config file, and the paths its
//! config and summary items set.

use serde_json::{Map, Value};
use yaml_rust2::Yaml;

use crate::limits::MAX_NESTING;

/// The value of wandb's JSON text; NaN and ±Infinity become the strings
/// labmate writes for them (`"NaN"`, `"Infinity"`, `"-Infinity"`). None
/// when it is not JSON or nests deeper than labmate keeps.
pub fn parse(text: &str) -> Option<Value> {
    let value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => serde_json::from_str(&quote_non_finite(text)).ok()?,
    };
    (depth(&value) <= MAX_NESTING).then_some(value)
}

/// The text with each bare `NaN`, `Infinity` and `-Infinity` outside
/// strings quoted.
fn quote_non_finite(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    let mut in_string = false;
    while let Some(c) = rest.chars().next() {
        if in_string {
            if c == '\\' {
                let escaped: String = rest.chars().take(2).collect();
                out.push_str(&escaped);
                rest = &rest[escaped.len()..];
                continue;
            }
            in_string = c != '"';
        } else if c == '"' {
            in_string = true;
        } else if let Some(word) = ["NaN", "Infinity", "-Infinity"].into_iter().find(|w| rest.starts_with(w)) {
            out.push('"');
            out.push_str(word);
            out.push('"');
            rest = &rest[word.len()..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// How many arrays and objects nest in a value.
pub fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Sets `path` in `map` to `value`, making the groups on the way (a value
/// in the way becomes a group, as a later wandb update replaces it).
pub fn set_path(map: &mut Map<String, Value>, path: &[String], value: Value) {
    let Some((last, groups)) = path.split_last() else { return };
    if groups.len() + depth(&value) >= MAX_NESTING {
        return;
    }
    let mut at = map;
    for part in groups {
        let slot = at.entry(part.clone()).or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        at = slot.as_object_mut().expect("made a group just above");
    }
    at.insert(last.clone(), value);
}

/// Takes `path` out of `map`, if it is there.
pub fn remove_path(map: &mut Map<String, Value>, path: &[String]) {
    let Some((last, groups)) = path.split_last() else { return };
    let mut at = map;
    for part in groups {
        match at.get_mut(part) {
            Some(Value::Object(inner)) => at = inner,
            _ => return,
        }
    }
    at.remove(last);
}

/// A YAML value as JSON: floats as numbers (non-finite ones as labmate's
/// strings), keys that are not strings as their text; None past
/// labmate's nesting.
pub fn from_yaml(y: &Yaml, level: usize) -> Option<Value> {
    if level > MAX_NESTING {
        return None;
    }
    Some(match y {
        Yaml::Real(_) => match y.as_f64() {
            Some(f) if f.is_nan() => Value::String("NaN".into()),
            Some(f) if f.is_infinite() => Value::String(if f > 0.0 { "Infinity" } else { "-Infinity" }.into()),
            Some(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
            None => Value::Null,
        },
        Yaml::Integer(i) => Value::from(*i),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(items) => Value::Array(items.iter().map(|i| from_yaml(i, level + 1)).collect::<Option<_>>()?),
        Yaml::Hash(hash) => {
            let mut map = Map::new();
            for (k, v) in hash {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    other => match from_yaml(other, level + 1)? {
                        Value::String(s) => s,
                        v => v.to_string(),
                    },
                };
                map.insert(key, from_yaml(v, level + 1)?);
            }
            Value::Object(map)
        }
        Yaml::Alias(_) | Yaml::Null | Yaml::BadValue => Value::Null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_json_reads_with_its_non_finite_words() {
        assert_eq!(parse("NaN"), Some(json!("NaN")));
        assert_eq!(parse("-Infinity"), Some(json!("-Infinity")));
        assert_eq!(
            parse(r#"{"a": [NaN, 1, Infinity], "s": "NaN \"Infinity\"", "b": -Infinity}"#),
            Some(json!({"a": ["NaN", 1, "Infinity"], "s": "NaN \"Infinity\"", "b": "-Infinity"}))
        );
        assert_eq!(parse("0.5"), Some(json!(0.5)));
        assert_eq!(parse("{not json"), None);
        assert_eq!(parse(&format!("{}1{}", "[".repeat(100), "]".repeat(100))), None);
    }

    #[test]
    fn paths_set_and_remove_nested_values() {
        let mut m = Map::new();
        let p = |s: &str| s.split('.').map(String::from).collect::<Vec<_>>();
        set_path(&mut m, &p("acc.top1"), json!(0.5));
        set_path(&mut m, &p("lr"), json!(1));
        set_path(&mut m, &p("lr.warm"), json!(2));
        assert_eq!(Value::Object(m.clone()), json!({"acc": {"top1": 0.5}, "lr": {"warm": 2}}));
        remove_path(&mut m, &p("acc.top1"));
        remove_path(&mut m, &p("no.such"));
        assert_eq!(Value::Object(m), json!({"acc": {}, "lr": {"warm": 2}}));
    }

    #[test]
    fn yaml_becomes_json() {
        let docs = yaml_rust2::YamlLoader::load_from_str("a: 1\nb: .nan\nc: [x, 2.5]\n3: {d: null}\n").unwrap();
        assert_eq!(from_yaml(&docs[0], 0), Some(json!({"a": 1, "b": "NaN", "c": ["x", 2.5], "3": {"d": null}})));
    }
}
