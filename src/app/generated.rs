//! What is generated from the clap definitions: shell completions and the man pages.

use sockit::error::{Error, ErrorKind, Result};
use sockit::stdio::Output;

use crate::cli::Cli;

/// A completion script for `shell`, from the clap definitions.
pub(super) fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "sockit", &mut out);
    out
}

/// The command tree as the man pages see it: built, so each subcommand is named as its
/// page is (`sockit-connect`).
fn man_tree() -> clap::Command {
    use clap::CommandFactory;
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// A man page in roff, from the clap definitions: the overview, or `command`'s own page.
pub(super) fn man_page(command: Option<&str>) -> Result<Vec<u8>> {
    let tree = man_tree();
    let page = match command {
        None => tree,
        Some(name) => tree.find_subcommand(name).cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::BadArgument,
                format!("no command '{name}'"),
                "sockit man takes connect, listen, chat, serve, bench, relay, expose, completions or man",
            )
        })?,
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .map_err(|e| Error::io("cannot render the man page", &e))?;
    Ok(out)
}

/// Every man page (`sockit.1`, `sockit-connect.1`, ...) into `dir`.
pub(super) fn write_man_pages(dir: &std::path::Path) -> Result<()> {
    clap_mangen::generate_to(man_tree(), dir).map_err(|e| {
        Error::io(
            format!("cannot write the man pages into {}", dir.display()),
            &e,
        )
    })
}

pub(super) async fn print_generated(output: &Output, text: Vec<u8>) -> Result<()> {
    output
        .write(text.into())
        .await
        .map_err(|_| Error::stdout_closed())
}
