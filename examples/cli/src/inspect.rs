//! `tokenkeeper inspect`.

use std::process::ExitCode;

/// Arguments of `tokenkeeper inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {}

pub fn run(_args: InspectArgs) -> ExitCode {
    eprintln!("tokenkeeper inspect: not built yet");
    ExitCode::from(2)
}
