//! User-given strings made safe for a terminal: run names, tags, metric and
//! config keys, messages. Text faces show them through [`escape_controls`]
//! (one line: a cell, a name in a header) or [`escape_keeping_lines`] (text
//! that is several lines by design: a notebook entry, a whole output); JSON
//! and CSV keep the exact strings.
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
    let unsafe_char = |c: char| needs_escape(c) && !(keep_lines && (c == '\n' || c == '\t'));
    let Some(first) = s.find(unsafe_char) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        if !unsafe_char(c) {
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
    fn lines_are_kept_when_asked() {
        assert_eq!(escape_keeping_lines("line 1\n\tline 2\x1b[0m\r\n"), "line 1\n\tline 2\\x1b[0m\\r\n");
    }
}
