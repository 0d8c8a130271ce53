//! The room in a browser: one self-contained page (no build step, no external assets),
//! served at `/` of a `chat http://HOST:PORT` endpoint, which joins over the WebSocket at
//! `/ws` of the same port as any other member. It puts every line in with `textContent`,
//! and the server sends it with a Content-Security-Policy that lets only its own script
//! run, so a member's `<img onerror=...>` is text.

//!
//! The page's WebSocket gets the room as data, not as the text a line client reads: each
//! line as `{"kind":K,"text":T}` and, after a notice, `{"kind":"state","you":NICK,
//! "here":[NICKS]}` from the room itself. So no member's words can fill the page's member
//! list or pass for a notice there. K comes from the prefix the room itself put on the
//! line, which a member's text cannot produce: `*** ` notice, `! ` error, `* ` action,
//! anything else a member's line.

use bytes::Bytes;

use super::room::{MemberId, Room};

/// The page.
pub const PAGE: &str = include_str!("web/index.html");

/// What kind of line the room made, by the prefix only the room writes.
pub fn kind(line: &str) -> &'static str {
    if line.starts_with("*** ") {
        "notice"
    } else if line.starts_with("! ") {
        "error"
    } else if line.starts_with("* ") {
        "action"
    } else {
        "line"
    }
}

/// A batch of the room's lines for member `id` as the page's messages, one JSON object per
/// line of output (each becomes one WebSocket text message).
pub fn for_page(room: &Room, id: MemberId, batch: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(batch.len() + 64);
    let mut noticed = false;
    for l in batch.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let text = String::from_utf8_lossy(l);
        let k = kind(&text);
        noticed |= k == "notice";
        let m = serde_json::json!({ "kind": k, "text": text });
        out.extend_from_slice(m.to_string().as_bytes());
        out.push(b'\n');
    }
    if noticed {
        let (you, here) = room.roster(id);
        let m = serde_json::json!({ "kind": "state", "you": you, "here": here });
        out.extend_from_slice(m.to_string().as_bytes());
        out.push(b'\n');
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_cannot_pass_for_a_notice() {
        assert_eq!(kind("*** guest1 joined"), "notice");
        assert_eq!(kind("* 42 joined"), "action");
        assert_eq!(kind("<42> *** fake"), "line");
        assert_eq!(kind("! no such nick"), "error");
    }
}
