//! The `sockit` binary: parse, set up logging, run, turn the result into an exit status.

mod app;
mod cli;

use std::process::ExitCode;

use clap::Parser;
use sockit::ErrorKind;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    app::init_logging(cli.verbose, cli.quiet);
    let result = app::run(cli);
    if let Some(signo) = app::interrupted_by() {
        // Interrupted: 128 + the signal, as a shell reports it (and ncat, socat, nc exit),
        // never 0; an error on the way out is still said.
        if let Err(e) = &result {
            if !matches!(e.kind(), ErrorKind::StdoutClosed | ErrorKind::NothingOpen) {
                app::say(format_args!("sockit: {e}"));
            }
        }
        return ExitCode::from(128u8.saturating_add(signo));
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `sockit ... | head`: the reader has what it wanted; that is success.
        Err(e) if *e.kind() == ErrorKind::StdoutClosed => ExitCode::SUCCESS,
        // `connect -z` found nothing open: exit 1 quietly, as netcat does.
        Err(e) if *e.kind() == ErrorKind::NothingOpen => ExitCode::FAILURE,
        Err(e) => {
            app::say(format_args!("sockit: {e}"));
            if let Some(hint) = e.hint() {
                app::say(format_args!("hint: {hint}"));
            }
            ExitCode::FAILURE
        }
    }
}
