//! `tokenkeeper mint`.

use std::process::ExitCode;

/// What to mint.
#[derive(Debug, clap::Subcommand)]
pub enum MintCommand {}

pub fn run(command: MintCommand) -> ExitCode {
    match command {}
}
