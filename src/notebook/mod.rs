//! The lab notebook (being written).

use crate::error::Result;
use crate::lab::Lab;

/// A new notebook entry.
#[derive(Debug, Clone, Default)]
pub struct NewEntry {
    /// hypothesis, observation, result, decision or bug.
    pub kind: String,
    pub text: String,
    /// Who wrote it: `--author`, `LABMATE_AUTHOR`, or the user name.
    pub author: String,
    /// Run ids the entry concerns.
    pub runs: Vec<String>,
    /// The id of an entry this one amends.
    pub amends: Option<String>,
}

/// Appends an entry to the notebook; returns its id.
pub fn append(_lab: &Lab, _entry: NewEntry) -> Result<String> {
    Err(crate::error::Error::Invalid("the notebook is not written yet".into()))
}
