//! The `sockit` binary: parse, set up logging, run, turn the result into an exit status.

mod app;
mod cli;

use std::process::ExitCode;

use clap::Parser;
use sockit::ErrorKind;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    app::init_logging(cli.verbose, cli.quiet);
    match app::run(cli) {
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
