//! The room's side of the bus (`--bus`): what other nodes say arrives here, and what this
//! node's members do goes out through [`Outgoing`].

use bytes::Bytes;
use tokio::sync::mpsc;

use super::super::text::nick_key;
use super::{line, MemberId, Outgoing, Room};

impl Room {
    /// Connects the room to its bus: its own events go to `tx` from now on.
    pub fn attach_bus(&self, tx: mpsc::Sender<Outgoing>) {
        self.lock().bus = Some(tx);
    }

    /// Lines from another node, for every member here (never published again).
    pub fn remote_say(&self, data: Bytes) {
        let mut st = self.lock();
        self.log_only(&mut st, None, data);
        self.drop_laggards(&mut st);
    }

    /// A private line from another node for the member called `to`, if it is here.
    pub fn remote_private(&self, to: &str, data: Bytes) {
        let mut st = self.lock();
        if let Some(&id) = st.nicks.get(&nick_key(to)) {
            self.tell(&mut st, id, data);
        }
    }

    /// Another node's members, as its roster says now.
    pub fn remote_roster(&self, node: &str, nicks: Vec<String>) {
        self.lock().remote.insert(node.to_string(), nicks);
    }

    /// A node that stopped answering: each of its members is announced as gone.
    pub fn node_lost(&self, node: &str, reason: &str) {
        let mut st = self.lock();
        if let Some(nicks) = st.remote.remove(node) {
            for n in nicks {
                self.log_only(&mut st, None, line(format!("*** {n} left ({reason})")));
            }
            self.drop_laggards(&mut st);
        }
    }

    /// The registry gave `nick` to a member of another node first: the member here goes
    /// back to `old` (or to a fresh guest nick), and is told why.
    pub fn claim_lost(&self, id: MemberId, nick: &str, old: Option<&str>) {
        let mut st = self.lock();
        let Some(current) = st.members.get(&id).map(|m| m.nick.clone()) else {
            return;
        };
        if nick_key(&current) != nick_key(nick) {
            return;
        }
        let back = match old {
            Some(o) if !st.nicks.contains_key(&nick_key(o)) => o.to_string(),
            _ => self.guest_nick(&mut st),
        };
        st.nicks.remove(&nick_key(&current));
        st.nicks.insert(nick_key(&back), id);
        if let Some(m) = st.members.get_mut(&id) {
            m.nick.clone_from(&back);
        }
        self.tell(
            &mut st,
            id,
            line(format!(
                "! the nick {nick} is taken on another node; you are {back}"
            )),
        );
        self.broadcast(
            &mut st,
            Some(id),
            line(format!("*** {current} is now {back}")),
        );
        Self::publish(
            &st,
            Outgoing::Claim {
                id,
                nick: back,
                old: None,
            },
        );
    }
}
