//! `tokenkeeper demo`.

use std::process::ExitCode;

/// Arguments of `tokenkeeper demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {}

pub fn run(_args: DemoArgs) -> ExitCode {
    eprintln!("tokenkeeper demo: not built yet");
    ExitCode::from(2)
}
