//! Text for people, the same in every face: numbers to significant digits
//! ([`sig`], [`num`]), strings cut to a width ([`clip`]), and user-given
//! strings made safe for a terminal: run names, tags, metric and config
//! keys, messages. Text faces show them through [`escape_controls`] (one
//! line: a cell, a name in a header) or [`escape_keeping_lines`] (text that
//! is several lines by design: a notebook entry, a whole output); JSON and
//! CSV keep the exact strings.
//!
//! What is escaped, and why:
//! - C0 controls and DEL (`\x1b`, `\x07`, `\x7f`...): escape sequences recolour,
//!   retitle or clear the terminal, and a bare `\r` or `\x08` overwrites what
//!   was shown. `\n`, `\t` and `\r` read as themselves.
//! - C1 controls (U+0080..U+009F, e.g. U+009B, a one-character CSI) as `\u{9b}`.
//! - Bidi embeddings, overrides and isolates (U+202A..U+202E, U+2066..U+2069)
//!   and the line and paragraph separators (U+2028, U+2029): they reorder or
//!   break what follows them, so a name could make its row say something else.
//!
//! A backslash is kept as it is: names with backslashes read naturally, and
//! `--json` is there when the exact string matters.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `s` on one line, every control character escaped (newlines and tabs too).
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// `s` with control characters escaped, but its newlines and tabs kept: for
/// text that is several lines by design.
pub fn escape_keeping_lines(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

fn escape(s: &str, keep_lines: bool) -> Cow<'_, str> {
    let escaped = |c: char| needs_escape(c) && !(keep_lines && (c == '\n' || c == '\t'));
    let Some(first) = s.find(escaped) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        if !escaped(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

/// `s` cut to `max` characters, with an ellipsis when cut.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut c: String = s.chars().take(max.saturating_sub(1)).collect();
    c.push('…');
    c
}

/// `x` rounded to `digits` significant digits, trailing zeros dropped;
/// scientific below 1e-4 and from 1e6 on (`0.0312`, `-123000`, `1.50e-7`).
/// Rounding is that of the exact decimal value, as `format!` does it.
pub fn sig(x: f64, digits: usize) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    if x == 0.0 {
        return "0".into();
    }
    let digits = digits.max(1);
    // Round first, then take the exponent, so 9.996 becomes "10" rather than "10.00".
    let sci = format!("{:.*e}", digits - 1, x);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        return sci;
    }
    let decimals = digits as i32 - 1 - exp;
    if decimals < 0 {
        // Fewer digits than the integer part has: the rest are zeros.
        let mut s: String = mantissa.chars().filter(|c| *c != '.').collect();
        s.extend(std::iter::repeat_n('0', decimals.unsigned_abs() as usize));
        return s;
    }
    let s = format!("{x:.*}", decimals as usize);
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

/// A metric value as every face shows it: four significant digits, more
/// when its integer part has more, integers whole; NaN and ±inf by name.
pub fn num(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{v:.0}");
    }
    let whole = match v.abs().log10().floor() {
        mag @ 0.0..6.0 => mag as usize + 1,
        _ => 0,
    };
    match sig(v, whole.max(4)) {
        // Rounded up to 1e6, where scientific notation begins: four digits there too.
        s if whole > 4 && s.contains('e') => sig(v, 4),
        s => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_as_it_is() {
        for s in ["", "lr3e-4-seed1", "val/loss", "résumé ✓ 学習", r"C:\runs\a"] {
            assert!(matches!(escape_controls(s), Cow::Borrowed(b) if b == s), "{s}");
        }
    }

    #[test]
    fn terminal_sequences_are_shown_not_obeyed() {
        assert_eq!(escape_controls("esc\x1b[31mRED\x1b]0;title\x07"), r"esc\x1b[31mRED\x1b]0;title\x07");
        assert_eq!(escape_controls("\x1b[2J"), r"\x1b[2J");
        assert_eq!(escape_controls("a\nb\tc\rd\0e\x7f"), r"a\nb\tc\rd\x00e\x7f");
        assert_eq!(escape_controls("\u{9b}31m\u{85}"), r"\u{9b}31m\u{85}");
        assert_eq!(
            escape_controls("ok\u{202e}gnp.exe\u{2066}x\u{2069}\u{2028}"),
            r"ok\u{202e}gnp.exe\u{2066}x\u{2069}\u{2028}"
        );
    }

    #[test]
    fn every_char_is_kept_or_shown_as_a_printable_escape() {
        for c in (0u32..0x3000).chain(0xfeff..0x10000).filter_map(char::from_u32) {
            let s = c.to_string();
            let e = escape_controls(&s);
            if needs_escape(c) {
                assert!(e.starts_with('\\') && e.chars().all(|c| c.is_ascii_graphic()), "{c:?} -> {e}");
            } else {
                assert_eq!(e, s, "{c:?}");
            }
        }
    }

    #[test]
    fn numbers_have_significant_digits() {
        assert_eq!(sig(0.031234, 3), "0.0312");
        assert_eq!(sig(-123456.0, 3), "-123000");
        assert_eq!(sig(9.996, 3), "10");
        assert_eq!(sig(1.5e-7, 3), "1.50e-7");
        assert_eq!(sig(0.0496, 2), "0.05");
        assert_eq!(sig(f64::NAN, 3), "NaN");
    }

    #[test]
    fn metric_values_have_four_significant_digits() {
        assert_eq!(num(0.312_74), "0.3127");
        assert_eq!(num(2.31), "2.31");
        assert_eq!(num(2.5), "2.5");
        assert_eq!(num(12.0), "12");
        assert_eq!(num(12345.0), "12345");
        assert_eq!(num(12345.6), "12346");
        assert_eq!(num(1.5e-7), "1.500e-7");
        assert_eq!(num(-0.002_345_6), "-0.002346");
        assert_eq!(num(-0.0), "0");
        assert_eq!(num(999_999.7), "1.000e6");
        assert_eq!(num(1e15), "1.000e15");
        assert_eq!(num(f64::NAN), "NaN");
        assert_eq!(num(f64::NEG_INFINITY), "-inf");
    }

    #[test]
    fn clipped_text_ends_in_an_ellipsis() {
        assert_eq!(clip("short", 5), "short");
        assert_eq!(clip("résumé ✓", 4), "rés…");
        assert_eq!(clip("abc", 0), "…");
    }

    #[test]
    fn lines_are_kept_when_asked() {
        assert_eq!(escape_keeping_lines("line 1\n\tline 2\x1b[0m\r\n"), "line 1\n\tline 2\\x1b[0m\\r\n");
    }
}
