//! `tokenkeeper serve`.

use std::process::ExitCode;

/// Arguments of `tokenkeeper serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

pub fn run(_args: ServeArgs) -> ExitCode {
    eprintln!("tokenkeeper serve: not built yet");
    ExitCode::from(2)
}
