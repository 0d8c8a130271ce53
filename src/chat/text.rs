//! What may reach another member's screen, and what a nick may be.
//!
//! Chat text comes from strangers and goes to terminals: an escape sequence can recolour,
//! retitle or clear a screen, and a bidi override can make text read backwards. Everything
//! that is not printable text is removed here, once, before the room sees it.

use std::borrow::Cow;

/// The longest nick, in characters (not bytes: `小明` is two).
pub const MAX_NICK: usize = 32;

/// Turns one raw line (without its newline) into text safe to show: invalid UTF-8 replaced,
/// a trailing CR dropped, escape sequences and control characters removed, tabs as spaces.
/// A line of printable ASCII, most of any chat, has nothing to remove but trailing spaces and
/// is lent back as it is: the room cleans every line of a burst while it holds its lock.
pub fn clean(raw: &[u8]) -> Cow<'_, str> {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    if raw.iter().all(|b| (b' '..=b'~').contains(b)) {
        if let Ok(text) = std::str::from_utf8(raw) {
            return Cow::Borrowed(text.trim_end());
        }
    }
    Cow::Owned(scrub(raw))
}

/// [`clean`] for any line, char by char.
fn scrub(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => skip_escape(&mut chars),
            // C1 CSI: the same as ESC [ on terminals that honour 8-bit controls.
            '\u{9b}' => skip_csi(&mut chars),
            '\u{9d}' | '\u{90}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            '\t' => out.push(' '),
            c if c.is_control() || is_bidi_control(c) => {}
            c => out.push(c),
        }
    }
    let kept = out.trim_end().len();
    out.truncate(kept);
    out
}

/// After ESC: CSI (`ESC [ ... final`), strings (OSC, DCS, PM, APC up to BEL or ST), or a
/// two-character sequence.
fn skip_escape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    match chars.next() {
        Some('[') => skip_csi(chars),
        Some(']' | 'P' | '^' | '_' | 'X') => skip_string(chars),
        _ => {}
    }
}

/// Parameters and intermediates run until a final byte in `@`..=`~`.
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for c in chars.by_ref() {
        if ('@'..='~').contains(&c) {
            return;
        }
    }
}

/// A control string ends with BEL, ST (`ESC \`) or the C1 ST.
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => return,
            '\u{1b}' => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                return;
            }
            _ => {}
        }
    }
}

/// Unicode's explicit direction controls, which reorder what follows them on screen.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Checks a wanted nick: 1 to 32 letters (any script), digits, `_` or `-`.
///
/// # Errors
/// Why the nick is refused, ready to follow `! `.
pub fn check_nick(nick: &str) -> Result<(), String> {
    use unicode_normalization::UnicodeNormalization;
    use unicode_security::GeneralSecurityProfile;
    let len = nick.chars().count();
    if len == 0 {
        return Err("a nick needs at least one character: /nick NAME".into());
    }
    if len > MAX_NICK {
        return Err(format!("a nick has at most {MAX_NICK} characters"));
    }
    // Judged in compatibility form (full-width letters are letters); UTS 39's identifier
    // profile refuses what cannot be seen or told apart: fillers, format characters,
    // obsolete scripts.
    let allowed = |c: char| c == '_' || c == '-' || (c.is_alphanumeric() && c.identifier_allowed());
    let refused = |c: &char| {
        let mut buf = [0u8; 4];
        !c.encode_utf8(&mut buf).nfkc().all(allowed)
    };
    if let Some(bad) = nick.chars().find(refused) {
        let shown = if bad == ' ' || bad.is_ascii_graphic() {
            format!("'{bad}'")
        } else {
            // What may not be in a nick may not be visible either: named, never printed.
            format!("U+{:04X}", bad as u32)
        };
        return Err(format!(
            "{shown} cannot be in a nick: use letters, digits, '_' and '-'"
        ));
    }
    Ok(())
}

/// The form two nicks are compared in: nicks that look the same are the same member.
/// `Alice`, `alice`, full-width `Ａｌｉｃｅ` and `Аlice` with a Cyrillic `А` all give one key
/// (NFKC, lower case, then UTS 39's confusable skeleton).
pub fn nick_key(nick: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let folded: String = nick.nfkc().collect::<String>().to_lowercase();
    unicode_security::skeleton(&folded).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicks_that_look_the_same_share_a_key() {
        let alice = nick_key("Alice");
        assert_eq!(nick_key("alice"), alice);
        assert_eq!(nick_key("\u{410}lice"), alice, "Cyrillic A");
        assert_eq!(
            nick_key("\u{ff21}\u{ff4c}\u{ff49}\u{ff43}\u{ff45}"),
            alice,
            "full-width"
        );
        assert_ne!(nick_key("Bob"), alice);
        assert_eq!(nick_key("张三"), nick_key("张三"));
    }

    #[test]
    fn invisible_characters_are_refused_and_named() {
        let e = check_nick("Al\u{200b}ice").unwrap_err();
        assert!(e.contains("U+200B"), "{e}");
        assert!(!e.contains('\u{200b}'), "{e}");
        assert!(check_nick("\u{3164}").unwrap_err().contains("U+3164"));
        assert!(check_nick("bob_the-2nd").is_ok());
        assert!(check_nick("张三").is_ok());
        assert!(check_nick("\u{ff21}\u{ff4c}\u{ff49}\u{ff43}\u{ff45}").is_ok());
    }

    #[test]
    fn keeps_text_in_any_script() {
        assert_eq!(clean("今天是%Y年 hello".as_bytes()), "今天是%Y年 hello");
        assert_eq!(clean(b"hi\r"), "hi");
    }

    #[test]
    fn printable_ascii_is_lent_back_as_the_full_cleaning_would_give_it() {
        let printable: String = (b' '..=b'~').map(char::from).collect();
        for line in [
            printable.clone(),
            format!("{printable}   "),
            "  <a> hi  \r".to_string(),
            String::new(),
            " ".into(),
        ] {
            let cleaned = clean(line.as_bytes());
            assert!(matches!(cleaned, Cow::Borrowed(_)), "{line:?}");
            let raw = line.as_bytes();
            assert_eq!(cleaned, scrub(raw.strip_suffix(b"\r").unwrap_or(raw)));
        }
        // DEL and TAB are ASCII but not printable: the full cleaning takes them.
        assert_eq!(clean(b"a\x7fb\tc"), "ab c");
        assert!(matches!(clean(b"a\x7fb"), Cow::Owned(_)));
    }

    #[test]
    fn removes_escapes_and_controls() {
        assert_eq!(clean(b"\x1b[2J\x1b[31mred\x1b[0m"), "red");
        assert_eq!(clean(b"\x1b]0;pwned\x07title"), "title");
        assert_eq!(clean(b"\x1b]0;pwned\x1b\\ok"), "ok");
        assert_eq!(clean(b"a\x08\x07b\x00c"), "abc");
        assert_eq!(clean("\u{9b}31mx\u{202e}y".as_bytes()), "xy");
        assert_eq!(clean(b"tab\there"), "tab here");
    }

    #[test]
    fn replaces_bad_utf8() {
        assert_eq!(clean(b"ok\xff\xfeok"), "ok\u{fffd}\u{fffd}ok");
    }

    #[test]
    fn nick_rules() {
        assert!(check_nick("小明").is_ok());
        assert!(check_nick("a_b-9").is_ok());
        assert!(check_nick("").is_err());
        assert!(check_nick("a b").is_err());
        assert!(check_nick("<x>").is_err());
        assert!(check_nick(&"x".repeat(33)).is_err());
        assert!(check_nick(&"字".repeat(32)).is_ok());
        assert_eq!(nick_key("Alice"), nick_key("alice"));
    }
}
