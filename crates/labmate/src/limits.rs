//! How much nesting and text the parsers of user input accept: far more
//! than any real expression needs, little enough that no input exhausts the
//! stack or keeps a command busy for long.

use crate::error::Error;

/// Levels of nesting: parentheses and `not` in a `--where` expression, the
/// groups of a `--config` key and its value.
pub const MAX_NESTING: usize = 64;

/// Bytes of one expression, condition or rule.
pub const MAX_EXPRESSION_BYTES: usize = 64 * 1024;

/// Refuses YAML whose sequences and mappings nest deeper than
/// [`MAX_NESTING`], before a loader that recurses meets it (yaml-rust2's
/// exhausts the stack at a few hundred levels). A syntax error is left for
/// the loader to say.
pub fn check_yaml_nesting(text: &str) -> Result<(), String> {
    use yaml_rust2::Event;
    let mut parser = yaml_rust2::parser::Parser::new_from_str(text);
    let mut depth = 0usize;
    loop {
        match parser.next_token() {
            Ok((Event::StreamEnd, _)) | Err(_) => return Ok(()),
            Ok((Event::SequenceStart(..) | Event::MappingStart(..), _)) => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(format!("nests deeper than {MAX_NESTING} levels"));
                }
            }
            Ok((Event::SequenceEnd | Event::MappingEnd, _)) => depth = depth.saturating_sub(1),
            Ok(_) => {}
        }
    }
}

/// Refuses an expression longer than [`MAX_EXPRESSION_BYTES`], pointing where it goes over.
pub fn check_length(what: &'static str, text: &str) -> Result<(), Error> {
    if text.len() <= MAX_EXPRESSION_BYTES {
        return Ok(());
    }
    let over = (0..=MAX_EXPRESSION_BYTES).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
    Err(Error::BadExpression {
        what,
        text: text.to_string(),
        column: text[..over].chars().count() + 1,
        why: format!("longer than {MAX_EXPRESSION_BYTES} bytes ({} here)", text.len()),
    })
}
