//! `tokenkeeper`: demo, inspect, mint and serve. The command-line contract is in
//! `shared/DESIGN.md`; scripts rely on it, so flags and JSON field names stay stable.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod demo;
mod inspect;
mod mint;
mod serve;

/// Keeps real-time access tokens alive: demo the SDK, inspect and mint tokens, run the
/// reference backend.
#[derive(Debug, Parser)]
#[command(name = "tokenkeeper", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run sessions against the embedded reference backend and watch them renew.
    Demo(demo::DemoArgs),
    /// Decode a token (Agora 007/006, ZEGO 04, JWT), optionally verifying it.
    Inspect(inspect::InspectArgs),
    /// Mint a token (server-side builders).
    #[command(subcommand)]
    Mint(mint::MintCommand),
    /// Run the reference backend and room server.
    Serve(serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Mint(command) => mint::run(command),
        Command::Serve(args) => serve::run(args),
    }
}
