//! What a member's line does in the room: text to the others, or a command (`/nick`,
//! `/who`, `/msg`, `/me`, `/help`, `/quit`).

use bytes::{Bytes, BytesMut};

use super::super::command::Command;
use super::super::text::{check_nick, clean, nick_key};
use super::{line, Flow, MemberId, Outgoing, Room, State};

const HELP: &str = "\
*** /nick NAME      change your nick (letters, digits, _ and -, up to 32)
*** /who            list the members
*** /msg NICK text  a private line to one member
*** /me action      tell the room what you do: * NICK action
*** /quit [reason]  leave (a line that is just 'bye' does the same)
*** //text          send a line that starts with /
";

impl Room {
    pub(super) fn handle<'a>(
        &self,
        st: &mut State,
        id: MemberId,
        lines: impl IntoIterator<Item = &'a [u8]>,
    ) -> Flow {
        let Some(nick) = st.members.get(&id).map(|m| m.nick.clone()) else {
            return Flow::Gone;
        };
        let mut nick = nick;
        let mut batch = BytesMut::new();
        for raw in lines {
            let text = clean(raw);
            if text.is_empty() {
                continue;
            }
            let command = Command::parse(&text);
            if let Command::Text(plain) = command {
                batch.extend_from_slice(b"<");
                batch.extend_from_slice(nick.as_bytes());
                batch.extend_from_slice(b"> ");
                batch.extend_from_slice(plain.as_bytes());
                batch.extend_from_slice(b"\n");
                continue;
            }
            if !batch.is_empty() {
                self.broadcast(st, Some(id), batch.split().freeze());
            }
            match self.command(st, id, &nick, command) {
                Flow::Stay => {}
                other => return other,
            }
            match st.members.get(&id) {
                Some(m) => nick.clone_from(&m.nick),
                None => return Flow::Gone,
            }
        }
        if !batch.is_empty() {
            self.broadcast(st, Some(id), batch.freeze());
        }
        if st.members.contains_key(&id) {
            Flow::Stay
        } else {
            Flow::Gone
        }
    }

    fn command(&self, st: &mut State, id: MemberId, nick: &str, command: Command<'_>) -> Flow {
        match command {
            // Plain text is batched by `handle`; one that reaches here goes out alone.
            Command::Text(text) => {
                self.broadcast(st, Some(id), line(format!("<{nick}> {text}")));
                Flow::Stay
            }
            Command::Quit(reason) => self.quit(st, id, nick, reason),
            Command::Nick(new) => {
                self.rename(st, id, nick, new);
                Flow::Stay
            }
            Command::Who => {
                let nicks = Self::everyone(st);
                let total = nicks.len();
                let shown = nicks
                    .iter()
                    .take(100)
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                let more = if total > 100 {
                    format!(" and {} more", total - 100)
                } else {
                    String::new()
                };
                let text = format!("*** {total} here: {shown}{more}");
                self.tell(st, id, line(text));
                Flow::Stay
            }
            Command::Msg { to, text: msg } => {
                if to.is_empty() || msg.is_empty() {
                    self.tell(st, id, line("! usage: /msg NICK text"));
                } else if let Some(&target) = st.nicks.get(&nick_key(to)) {
                    self.tell(st, target, line(format!("<{nick}> (private) {msg}")));
                    let to_nick = st.members.get(&target).map_or(to, |m| m.nick.as_str());
                    let echo = line(format!("*** to {to_nick}: {msg}"));
                    self.tell(st, id, echo);
                } else if Self::remote_has(st, to) {
                    Self::publish(
                        st,
                        Outgoing::Private {
                            to: to.to_string(),
                            data: line(format!("<{nick}> (private) {msg}")),
                        },
                    );
                    self.tell(st, id, line(format!("*** to {to}: {msg}")));
                } else {
                    self.tell(
                        st,
                        id,
                        line(format!(
                            "! nobody here is called {to}; /who lists the members"
                        )),
                    );
                }
                Flow::Stay
            }
            Command::Me(action) => {
                if action.is_empty() {
                    self.tell(st, id, line("! usage: /me action"));
                } else {
                    self.broadcast(st, Some(id), line(format!("* {nick} {action}")));
                }
                Flow::Stay
            }
            Command::Help => {
                self.tell(st, id, Bytes::from_static(HELP.as_bytes()));
                Flow::Stay
            }
            Command::Unknown(cmd) => {
                let text = format!("! unknown command {cmd}; /help lists the commands");
                self.tell(st, id, line(text));
                Flow::Stay
            }
        }
    }

    fn quit(&self, st: &mut State, id: MemberId, nick: &str, reason: &str) -> Flow {
        self.tell(st, id, line("*** bye"));
        if Self::remove(st, id).is_some() {
            tracing::info!(%nick, reason, members = st.members.len(), "member left");
            self.broadcast(st, Some(id), line(format!("*** {nick} left ({reason})")));
        }
        Flow::Left
    }

    fn rename(&self, st: &mut State, id: MemberId, old: &str, new: &str) {
        if let Err(why) = check_nick(new) {
            return self.tell(st, id, line(format!("! {why}")));
        }
        let key = nick_key(new);
        match st.nicks.get(&key) {
            Some(&owner) if owner != id => {
                return self.tell(st, id, line(format!("! the nick {new} is taken")));
            }
            _ => {}
        }
        if nick_key(old) != key && Self::remote_has(st, new) {
            return self.tell(st, id, line(format!("! the nick {new} is taken")));
        }
        if old == new {
            return self.tell(st, id, line(format!("*** you are already {new}")));
        }
        st.nicks.remove(&nick_key(old));
        st.nicks.insert(key, id);
        if let Some(m) = st.members.get_mut(&id) {
            m.nick = new.to_string();
        }
        tracing::info!(old, new, "nick changed");
        self.tell(st, id, line(format!("*** you are now {new}")));
        self.broadcast(st, Some(id), line(format!("*** {old} is now {new}")));
        Self::publish(
            st,
            Outgoing::Claim {
                id,
                nick: new.to_string(),
                old: Some(old.to_string()),
            },
        );
    }
}
