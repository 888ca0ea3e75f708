//! Text from registries and artifacts shown to a person: one escaping rule for the workspace.
//!
//! Error bodies, annotations, titles, archive entry names and platform fields come from parties
//! ds-porter does not trust. Printed raw, control characters rewrite the terminal (ESC
//! sequences: OSC 0 sets the window title, OSC 52 writes the clipboard; CR and BS overwrite a
//! line; BEL rings) and bidirectional overrides make text read differently from what it is
//! (`exe.txt` shown for `txt.exe`). [`escape_remote`] makes every such character visible as an
//! escape; [`is_unsafe_char`] is the same rule for refusing names outright.

use std::fmt;

/// Whether `c` must not reach a terminal as it is: a control character (C0 including CR, LF,
/// TAB, BEL and ESC; DEL; C1), a bidirectional formatting character (LRM, RLM, ALM, the
/// embeddings and overrides U+202A–U+202E, the isolates U+2066–U+2069) or a line or paragraph
/// separator (U+2028, U+2029).
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'
                ..='\u{202E}' | '\u{2066}'
                ..='\u{2069}' | '\u{2028}' | '\u{2029}'
        )
}

/// Whether `text` contains a character [`is_unsafe_char`] refuses.
pub fn has_unsafe_chars(text: &str) -> bool {
    text.chars().any(is_unsafe_char)
}

/// `text` with every character [`is_unsafe_char`] names written as an escape: `\n`, `\r`, `\t`,
/// otherwise `\u{…}` with the code point in hex (`\u{1b}`, `\u{202e}`). Everything else is kept.
pub fn escape_remote(text: &str) -> String {
    Escaped(text).to_string()
}

/// [`escape_remote`] as a `Display` value, for formatting without an intermediate `String`.
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some((at, c)) = rest.char_indices().find(|(_, c)| is_unsafe_char(*c)) {
            f.write_str(&rest[..at])?;
            match c {
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c => write!(f, "\\u{{{:x}}}", u32::from(c))?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_control_sequences_are_made_visible() {
        // OSC 0 (window title) and OSC 52 (clipboard), each ended by BEL, then a line rewrite.
        let hostile = "denied\u{1b}]0;owned\u{7}\u{1b}]52;c;ZXZpbA==\u{7}\rok\u{8}";
        let shown = escape_remote(hostile);
        assert_eq!(
            shown,
            "denied\\u{1b}]0;owned\\u{7}\\u{1b}]52;c;ZXZpbA==\\u{7}\\rok\\u{8}"
        );
        assert!(!has_unsafe_chars(&shown));
    }

    #[test]
    fn line_breaks_tabs_del_and_c1_controls_are_escaped() {
        assert_eq!(escape_remote("a\nb\tc"), "a\\nb\\tc");
        assert_eq!(
            escape_remote("\u{7f}\u{80}\u{9b}31m"),
            "\\u{7f}\\u{80}\\u{9b}31m"
        );
        assert_eq!(escape_remote("\0"), "\\u{0}");
        assert_eq!(escape_remote("a\u{2028}b\u{2029}"), "a\\u{2028}b\\u{2029}");
    }

    #[test]
    fn bidirectional_overrides_and_isolates_are_escaped() {
        for c in ('\u{202A}'..='\u{202E}')
            .chain('\u{2066}'..='\u{2069}')
            .chain(['\u{200E}', '\u{200F}', '\u{061C}'])
        {
            assert!(is_unsafe_char(c), "U+{:04X}", u32::from(c));
            let shown = escape_remote(&format!("x{c}y"));
            assert_eq!(shown, format!("x\\u{{{:x}}}y", u32::from(c)));
        }
        // "txt.exe" that a terminal would show as "exe.txt".
        assert_eq!(escape_remote("\u{202E}exe.txt"), "\\u{202e}exe.txt");
    }

    #[test]
    fn ordinary_text_is_unchanged() {
        for text in [
            "",
            "registry 127.0.0.1:5000: HTTP 500",
            "C:\\path\\x",
            "naïve — ünïcödé 日本語 🙂",
            "\u{200B}zero width space is not a control",
        ] {
            assert_eq!(escape_remote(text), text);
            assert!(!has_unsafe_chars(text), "{text:?}");
        }
    }

    #[test]
    fn the_display_form_equals_the_string_form() {
        let text = "a\u{1b}[2Jb\u{202e}c";
        assert_eq!(
            format!("[{}]", Escaped(text)),
            format!("[{}]", escape_remote(text))
        );
    }
}
