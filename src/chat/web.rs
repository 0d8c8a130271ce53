//! The room in a browser: one self-contained page (no build step, no external assets),
//! served at `/` of a `chat http://HOST:PORT` endpoint, which joins over the WebSocket at
//! `/ws` of the same port as any other member. It puts every line in with `textContent`,
//! and the server sends it with a Content-Security-Policy that lets only its own script
//! run, so a member's `<img onerror=...>` is text.

/// The page.
pub const PAGE: &str = include_str!("web/index.html");
