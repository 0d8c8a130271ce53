//! What a member's line means: plain text for the room, or a slash command. Parsing only;
//! the room carries commands out.

/// One line of a member, cleaned, as the room understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// A line for every other member (`//text` arrives here as `/text`).
    Text(&'a str),
    /// `/nick NAME`.
    Nick(&'a str),
    /// `/who`.
    Who,
    /// `/msg NICK text`; either part may be empty, which the room answers with the usage.
    Msg {
        /// The receiver's nick.
        to: &'a str,
        /// The private line.
        text: &'a str,
    },
    /// `/me action` (empty: the usage).
    Me(&'a str),
    /// `/help`.
    Help,
    /// `/quit [reason]`, or a line that is just `bye` (the tutorial's goodbye).
    Quit(&'a str),
    /// A slash word the room does not know.
    Unknown(&'a str),
}

impl<'a> Command<'a> {
    /// Reads one cleaned, non-empty line.
    pub fn parse(text: &'a str) -> Command<'a> {
        if let Some(rest) = text.strip_prefix("//") {
            // The escape: `//x` is the text `/x`.
            return Command::Text(&text[text.len() - rest.len() - 1..]);
        }
        if text.eq_ignore_ascii_case("bye") {
            return Command::Quit("bye");
        }
        if !text.starts_with('/') {
            return Command::Text(text);
        }
        let (cmd, rest) = match text.split_once(' ') {
            Some((c, r)) => (c, r.trim()),
            None => (text, ""),
        };
        match cmd.to_lowercase().as_str() {
            "/quit" => Command::Quit(if rest.is_empty() { "quit" } else { rest }),
            "/nick" => Command::Nick(rest),
            "/who" => Command::Who,
            "/msg" => {
                let (to, text) = rest.split_once(' ').unwrap_or((rest, ""));
                Command::Msg {
                    to,
                    text: text.trim(),
                }
            }
            "/me" => Command::Me(rest),
            "/help" => Command::Help,
            _ => Command::Unknown(cmd),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_commands() {
        assert_eq!(Command::parse("hello"), Command::Text("hello"));
        assert_eq!(Command::parse("//etc/passwd"), Command::Text("/etc/passwd"));
        assert_eq!(Command::parse("BYE"), Command::Quit("bye"));
        assert_eq!(Command::parse("/quit"), Command::Quit("quit"));
        assert_eq!(
            Command::parse("/QUIT gone home"),
            Command::Quit("gone home")
        );
        assert_eq!(Command::parse("/nick  bob "), Command::Nick("bob"));
        assert_eq!(Command::parse("/who"), Command::Who);
        assert_eq!(
            Command::parse("/msg bob  hi there"),
            Command::Msg {
                to: "bob",
                text: "hi there"
            }
        );
        assert_eq!(
            Command::parse("/msg bob"),
            Command::Msg {
                to: "bob",
                text: ""
            }
        );
        assert_eq!(Command::parse("/me waves"), Command::Me("waves"));
        assert_eq!(Command::parse("/help"), Command::Help);
        assert_eq!(Command::parse("/frob x"), Command::Unknown("/frob"));
    }
}
