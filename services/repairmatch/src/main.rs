//! The `repairmatch` binary: parse the command line, set up logging, run.

use std::process::ExitCode;

use clap::Parser;
use repairmatch::cli::{Cli, run};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Logging starts in `run`: `serve` sets it up from its config.
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("repairmatch: {error:#}");
            ExitCode::FAILURE
        }
    }
}
