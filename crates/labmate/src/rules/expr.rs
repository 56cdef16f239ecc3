//! The small condition language of rules and `wait --until`:
//! `val_loss > 5`, `step >= 1000 and loss < 0.1`, and rules built on it:
//! `grad_norm > 100 for 3 after step 1000 => stop`.
//!
//! Neither nests; each is at most
//! [`MAX_EXPRESSION_BYTES`](crate::limits::MAX_EXPRESSION_BYTES) long.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::limits::check_length;
use crate::settings::Action;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl Op {
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "==",
            Op::Ne => "!=",
        })
    }
}

/// `KEY OP NUMBER`. The key is a metric name, or `step` (the latest step).
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub key: String,
    pub op: Op,
    pub value: f64,
}

/// Comparisons joined by `and`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition(pub Vec<Comparison>);

impl Condition {
    /// Whether every comparison holds, given each key's current value.
    pub fn holds(&self, value_of: impl Fn(&str) -> Option<f64>) -> bool {
        self.0.iter().all(|c| value_of(&c.key).is_some_and(|v| c.op.holds(v, c.value)))
    }
}

/// `COMPARISON [for N] [after step S] => alert|stop`
#[derive(Debug, Clone, PartialEq)]
pub struct UserRule {
    pub text: String,
    pub when: Comparison,
    /// Consecutive points the comparison must hold for.
    pub for_points: u32,
    pub after_step: Option<i64>,
    pub action: Action,
}

pub fn parse_condition(text: &str) -> Result<Condition, Error> {
    check_length("condition", text)?;
    let mut p = Parser::new(text, "condition");
    let cond = p.condition()?;
    p.end()?;
    Ok(cond)
}

pub fn parse_rule(text: &str) -> Result<UserRule, Error> {
    check_length("rule", text)?;
    let mut p = Parser::new(text, "rule");
    let when = p.comparison()?;
    let (mut for_points, mut after_step) = (1, None);
    loop {
        match p.peek_word() {
            Some("for") if for_points == 1 => {
                p.word();
                let n = p.number("a count of points after 'for'")?;
                if !(1.0..=u32::MAX as f64).contains(&n) || n.fract() != 0.0 {
                    return Err(p.error_before(&format!("'for' takes a whole number of points, 1 to {}", u32::MAX)));
                }
                for_points = n as u32;
            }
            Some("after") if after_step.is_none() => {
                p.word();
                if p.peek_word() != Some("step") {
                    return Err(p.error("expected 'step' after 'after'"));
                }
                p.word();
                let n = p.number("a step number after 'after step'")?;
                if !(0.0..i64::MAX as f64).contains(&n) || n.fract() != 0.0 {
                    return Err(p.error_before("'after step' takes a step: a whole number, 0 or more"));
                }
                after_step = Some(n as i64);
            }
            _ => break,
        }
    }
    p.expect("=>", "'=>' and an action (alert or stop)")?;
    let action = match p.peek_word() {
        Some("alert") => Action::Alert,
        Some("stop") => Action::Stop,
        _ => return Err(p.error("expected an action: alert or stop")),
    };
    p.word();
    p.end()?;
    Ok(UserRule { text: text.trim().to_string(), when, for_points, after_step, action })
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    last: usize,
    what: &'static str,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, what: &'static str) -> Parser<'a> {
        Parser { text, pos: 0, last: 0, what }
    }

    fn skip_ws(&mut self) {
        while self.text[self.pos..].starts_with([' ', '\t']) {
            self.pos += 1;
        }
    }

    fn condition(&mut self) -> Result<Condition, Error> {
        let mut parts = vec![self.comparison()?];
        while self.peek_word() == Some("and") {
            self.word();
            parts.push(self.comparison()?);
        }
        Ok(Condition(parts))
    }

    fn comparison(&mut self) -> Result<Comparison, Error> {
        self.skip_ws();
        let key = self.word().ok_or_else(|| self.error("expected a metric name (or `step`)"))?;
        if key.parse::<f64>().is_ok() {
            return Err(self.error_before("expected a metric name (or `step`), found a number"));
        }
        self.skip_ws();
        self.last = self.pos;
        let rest = &self.text[self.pos..];
        let (op, len) = [(">=", Op::Ge), ("<=", Op::Le), ("==", Op::Eq), ("!=", Op::Ne), (">", Op::Gt), ("<", Op::Lt)]
            .into_iter()
            .find(|(s, _)| rest.starts_with(s) && !rest.starts_with("=>"))
            .map(|(s, op)| (op, s.len()))
            .ok_or_else(|| self.error("expected a comparison: > >= < <= == !="))?;
        self.pos += len;
        let value = self.number("a number")?;
        if value.is_nan() {
            return Err(self.error_before(
                "NaN is no threshold: nothing compares to it (the nonfinite rule watches for NaN values)",
            ));
        }
        Ok(Comparison { key: key.to_string(), op, value })
    }

    /// A word: letters, digits and `_ . / - @ :` (metric names like `sys/gpu0/util_percent`).
    fn word(&mut self) -> Option<&'a str> {
        self.skip_ws();
        self.last = self.pos;
        let rest = &self.text[self.pos..];
        let len = rest.find(|c: char| !(c.is_alphanumeric() || "_./-@:+".contains(c))).unwrap_or(rest.len());
        if len == 0 {
            return None;
        }
        self.pos += len;
        Some(&rest[..len])
    }

    fn peek_word(&mut self) -> Option<&'a str> {
        let saved = (self.pos, self.last);
        let w = self.word();
        (self.pos, self.last) = saved;
        w
    }

    fn number(&mut self, what: &str) -> Result<f64, Error> {
        let w = self.word().ok_or_else(|| self.error(&format!("expected {what}")))?;
        match w.to_ascii_lowercase().as_str() {
            "inf" | "+inf" | "infinity" => Ok(f64::INFINITY),
            "-inf" | "-infinity" => Ok(f64::NEG_INFINITY),
            _ => w.parse::<f64>().map_err(|_| self.error_before(&format!("expected {what}, found '{w}'"))),
        }
    }

    fn expect(&mut self, token: &str, what: &str) -> Result<(), Error> {
        self.skip_ws();
        self.last = self.pos;
        if self.text[self.pos..].starts_with(token) {
            self.pos += token.len();
            Ok(())
        } else {
            Err(self.error(&format!("expected {what}")))
        }
    }

    fn end(&mut self) -> Result<(), Error> {
        self.skip_ws();
        self.last = self.pos;
        if self.pos < self.text.len() {
            return Err(self.error(&format!("unexpected '{}'", &self.text[self.pos..])));
        }
        Ok(())
    }

    /// An error at the current position.
    fn error(&self, why: &str) -> Error {
        self.error_at(self.pos, why)
    }

    /// An error at the start of the token just read.
    fn error_before(&self, why: &str) -> Error {
        self.error_at(self.last, why)
    }

    fn error_at(&self, pos: usize, why: &str) -> Error {
        // Point at the next token, not at the blanks before it.
        let pos = pos + self.text[pos..].len() - self.text[pos..].trim_start().len();
        let col = self.text[..pos].chars().count() + 1;
        Error::BadExpression { what: self.what, text: self.text.to_string(), column: col, why: why.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse() {
        let r = parse_rule("val_loss > 5 after step 1000 => stop").unwrap();
        assert_eq!(r.when, Comparison { key: "val_loss".into(), op: Op::Gt, value: 5.0 });
        assert_eq!((r.for_points, r.after_step, r.action), (1, Some(1000), Action::Stop));
        let r = parse_rule("grad_norm>100 for 3 => alert").unwrap();
        assert_eq!((r.when.op, r.when.value, r.for_points, r.action), (Op::Gt, 100.0, 3, Action::Alert));
        let r = parse_rule("sys/gpu0/temp_c >= 1e2 for 2 after step 10 => alert").unwrap();
        assert_eq!(r.when.key, "sys/gpu0/temp_c");
    }

    #[test]
    fn bad_rules_point_at_the_mistake() {
        let e = parse_rule("val_loss > x => stop").unwrap_err().to_string();
        assert!(e.contains("column 12") && e.contains("expected a number, found 'x'"), "{e}");
        let e = parse_rule("val_loss > 5 => explode").unwrap_err().to_string();
        assert!(e.contains("column 17") && e.contains("expected an action"), "{e}");
        let e = parse_rule("val_loss 5 => stop").unwrap_err().to_string();
        assert!(e.contains("column 10") && e.contains("expected a comparison"), "{e}");
        let e = parse_rule("loss > 1 for 0 => stop").unwrap_err().to_string();
        assert!(e.contains("whole number"), "{e}");
        let e = parse_rule("loss > NaN => stop").unwrap_err().to_string();
        assert!(e.contains("column 8") && e.contains("NaN is no threshold"), "{e}");
        assert!(parse_condition("step >= 1 and loss != nan").unwrap_err().to_string().contains("NaN"));
        for count in ["99999999999999999999", "4294967296", "1.5", "-1", "inf", "NaN"] {
            let e = parse_rule(&format!("loss > 1 for {count} => stop")).unwrap_err().to_string();
            assert!(e.contains("column 14") && e.contains("'for' takes a whole number"), "{e}");
        }
        for step in ["-5", "1.5", "1e30", "NaN", "inf"] {
            let e = parse_rule(&format!("loss > 1 after step {step} => stop")).unwrap_err().to_string();
            assert!(e.contains("column 21") && e.contains("'after step' takes a step"), "{e}");
        }
        assert_eq!(parse_rule("loss > 1 for 4294967295 after step 0 => stop").unwrap().for_points, u32::MAX);
        let e = parse_rule("loss > 1").unwrap_err().to_string();
        assert!(e.contains("column 9") && e.contains("'=>'"), "{e}");
    }

    #[test]
    fn conditions_parse_and_evaluate() {
        let c = parse_condition("step >= 1000 and val_loss < 2.1").unwrap();
        assert!(c.holds(|k| Some(if k == "step" { 1000.0 } else { 2.0 })));
        assert!(!c.holds(|k| Some(if k == "step" { 999.0 } else { 2.0 })));
        assert!(!c.holds(|k| (k == "step").then_some(2000.0)), "a missing metric never holds");
        assert!(parse_condition("step >= ").unwrap_err().to_string().contains("column 9"));
        assert!(parse_condition("step >= 1 or x < 2").is_err());
    }
}
