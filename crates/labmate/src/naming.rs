//! Run names that stay legible after hundreds of runs: templates over a
//! run's config and tags (`lr{config.lr}-s{config.seed}`), and, for runs
//! launched without one, the config keys that differ from the baseline's.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Fills `{config.KEY}`, `{config.a.b}` and `{tags}` in a template.
pub fn render(template: &str, config: &Map<String, Value>, tags: &[String]) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').ok_or_else(|| {
            Error::invalid("name template", format!("name template '{template}': a '{{' is not closed"))
        })?;
        let key = rest[start + 1..start + end].trim();
        out.push_str(&value_of(key, config, tags).ok_or_else(|| {
            let how = if key.starts_with("config.") { "" } else { " (use {config.KEY} or {tags})" };
            Error::invalid("name template", format!("name template '{template}': the run has no {key}{how}"))
        })?);
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn value_of(key: &str, config: &Map<String, Value>, tags: &[String]) -> Option<String> {
    if key == "tags" {
        return Some(tags.join("+"));
    }
    let mut parts = key.strip_prefix("config.")?.split('.');
    let mut at = config.get(parts.next()?)?;
    for p in parts {
        at = at.get(p)?;
    }
    Some(short(at))
}

fn short(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `lr=0.03,seed=2`: the config keys (flattened) whose values differ from
/// the baseline's, or None when nothing differs.
pub fn from_config_diff(config: &Map<String, Value>, baseline: &Map<String, Value>) -> Option<String> {
    let mut parts = Vec::new();
    diff("", config, baseline, &mut parts);
    (!parts.is_empty()).then(|| parts.join(","))
}

fn diff(prefix: &str, a: &Map<String, Value>, b: &Map<String, Value>, out: &mut Vec<String>) {
    for (k, v) in a {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match (v, b.get(k)) {
            (Value::Object(inner), Some(Value::Object(base))) => diff(&key, inner, base, out),
            (v, Some(base)) if v == base => {}
            (v, _) => out.push(format!("{key}={}", short(v))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn templates_fill_config_and_tags() {
        let c = obj(json!({"lr": 0.0003, "seed": 2, "opt": {"name": "adam"}}));
        let tags = vec!["a".to_string(), "b".to_string()];
        assert_eq!(
            render("lr{config.lr}-s{config.seed}-{config.opt.name}-{tags}", &c, &tags).unwrap(),
            "lr0.0003-s2-adam-a+b"
        );
        let e = render("lr{config.lrr}", &c, &tags).unwrap_err().to_string();
        assert!(e.contains("the run has no config.lrr"), "{e}");
        assert!(render("x{config.lr", &c, &tags).unwrap_err().to_string().contains("not closed"));
    }

    #[test]
    fn names_from_the_config_that_differs() {
        let base = obj(json!({"lr": 0.01, "seed": 1, "opt": {"name": "adam", "b": 0.9}}));
        let c = obj(json!({"lr": 0.03, "seed": 1, "opt": {"name": "sgd", "b": 0.9}}));
        assert_eq!(from_config_diff(&c, &base).unwrap(), "lr=0.03,opt.name=sgd");
        assert_eq!(from_config_diff(&base, &base), None);
    }
}
