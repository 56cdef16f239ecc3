#![deny(unsafe_code)]

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    cli::run(args).unwrap_or_else(|err| cli::report(&err))
}
