//! How a command prints what the master answered: as text for a person, or as JSON (`--json`)
//! for a script.

use std::process::ExitCode;

use serde::Serialize;

use crate::client::Failure;

/// The form asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    Json,
}

impl Format {
    /// From a command's `--json` flag.
    pub(crate) fn from_json_flag(json: bool) -> Self {
        if json { Format::Json } else { Format::Text }
    }
}

/// Prints `value` as pretty JSON, or as `text` writes it.
pub(crate) fn print<T: Serialize>(
    value: &T,
    format: Format,
    text: impl FnOnce(&T) -> String,
) -> Result<ExitCode, Failure> {
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(value).map_err(|_| Failure::Unexpected)?
        ),
        Format::Text => print!("{}", text(value)),
    }
    Ok(ExitCode::SUCCESS)
}
