//! The one way the project reads YAML (DS's config file, `--config`, `ds.manifest.yaml`): the
//! document is bounded before the parser sees it.
//!
//! The parser (libyaml's design, through `serde_yaml_ng`) re-checks every open flow collection
//! for each token it reads, so `name: [[[[…]]]]` takes time quadratic in its length: 400 KB of
//! brackets took over a minute. [`from_str`] refuses a document larger than [`MAX_BYTES`] and
//! one whose flow collections (`[…]`, `{…}`) may nest deeper than [`MAX_DEPTH`], which keeps
//! parsing linear in the size.
//!
//! The depth is found without parsing, by an over-estimate that a document cannot trick:
//! brackets inside quoted scalars and comments do not count, but whether a quote or a `#` starts
//! one depends on where the parser is. So the scan follows every reading at once: a flow
//! collection may start at any `[` or `{`, and where the tokenizer's choice is unclear, both
//! choices are followed. Readings in the same lexical state are merged, keeping the deepest, so
//! the scan is one pass with a handful of states; the parser's actual reading is always among
//! them, and the depth reported is at least the depth it will reach.

use serde::de::DeserializeOwned;

/// Largest YAML document read.
pub const MAX_BYTES: usize = 4 << 20;

/// Deepest nesting of flow collections accepted; far above what any config or release
/// manifest needs, low enough that parsing stays linear.
pub const MAX_DEPTH: usize = 64;

/// Parses `text` after checking it against [`MAX_BYTES`] and [`MAX_DEPTH`]; the error is the
/// reason, for the caller to name the document.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    check_bounds(text)?;
    serde_yaml_ng::from_str(text).map_err(|e| e.to_string())
}

/// Refuses a document over [`MAX_BYTES`], or one whose flow collections may nest deeper than
/// [`MAX_DEPTH`] (naming the line and column where the limit is passed).
pub fn check_bounds(text: &str) -> Result<(), String> {
    if text.len() > MAX_BYTES {
        return Err(format!(
            "the document is {} bytes, more than the {} MiB limit",
            text.len(),
            MAX_BYTES >> 20
        ));
    }
    let mut readings = Readings::default();
    let (mut line, mut column) = (1usize, 0usize);
    for c in text.chars() {
        column += 1;
        readings = readings.step(c);
        if readings.deepest() > MAX_DEPTH {
            return Err(format!(
                "flow collections ([…], {{…}}) nested deeper than {MAX_DEPTH} levels at line \
                 {line} column {column}"
            ));
        }
        if c == '\n' {
            line += 1;
            column = 0;
        }
    }
    Ok(())
}

/// Where a reading of the text is, inside a flow collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    /// Between tokens.
    Start,
    /// Inside a plain scalar.
    Plain,
    /// After blanks inside a plain scalar (a `#` now starts a comment).
    PlainSpace,
    /// Inside a single-quoted scalar.
    Single,
    /// After a `'` inside a single-quoted scalar: `''` is an escaped quote, else the end.
    SingleQuote,
    /// Inside a double-quoted scalar.
    Double,
    /// After a `\` inside a double-quoted scalar.
    DoubleEscape,
    /// Inside a comment.
    Comment,
    /// Inside an anchor or alias name.
    Anchor,
    /// Inside a tag, read as taking every URI character (brackets and quotes too).
    Tag,
}

const STATES: [Lex; 10] = [
    Lex::Start,
    Lex::Plain,
    Lex::PlainSpace,
    Lex::Single,
    Lex::SingleQuote,
    Lex::Double,
    Lex::DoubleEscape,
    Lex::Comment,
    Lex::Anchor,
    Lex::Tag,
];

/// The deepest flow nesting of any reading in each state (0: no reading is there).
#[derive(Debug, Default, Clone, Copy)]
struct Readings([usize; STATES.len()]);

impl Readings {
    fn deepest(&self) -> usize {
        self.0.iter().copied().max().unwrap_or(0)
    }

    fn add(&mut self, lex: Lex, depth: usize) {
        if depth == 0 {
            // The collection closed: that reading is back in block context, where any later
            // `[` or `{` starts a new one.
            return;
        }
        let slot = &mut self.0[lex as usize];
        *slot = (*slot).max(depth);
    }

    /// Every reading after `c`, plus a new flow collection when `c` opens one.
    fn step(self, c: char) -> Readings {
        let mut next = Readings::default();
        for lex in STATES {
            let depth = self.0[lex as usize];
            if depth > 0 {
                after(lex, depth, c, &mut next);
            }
        }
        if matches!(c, '[' | '{') {
            next.add(Lex::Start, 1);
        }
        next
    }
}

/// Adds the readings a reading in `lex` at `depth` becomes after `c`.
fn after(lex: Lex, depth: usize, c: char, next: &mut Readings) {
    let blank = matches!(c, ' ' | '\t' | '\r' | '\n');
    match lex {
        Lex::Start => match c {
            _ if blank => next.add(Lex::Start, depth),
            '#' => next.add(Lex::Comment, depth),
            '\'' => next.add(Lex::Single, depth),
            '"' => next.add(Lex::Double, depth),
            '[' | '{' => next.add(Lex::Start, depth + 1),
            ']' | '}' => next.add(Lex::Start, depth - 1),
            ',' | '?' | ':' => next.add(Lex::Start, depth),
            '&' | '*' => next.add(Lex::Anchor, depth),
            '!' => {
                next.add(Lex::Tag, depth);
                next.add(Lex::Plain, depth);
            }
            _ => next.add(Lex::Plain, depth),
        },
        Lex::Plain => match c {
            _ if blank => next.add(Lex::PlainSpace, depth),
            ',' => next.add(Lex::Start, depth),
            '[' | '{' => next.add(Lex::Start, depth + 1),
            ']' | '}' => next.add(Lex::Start, depth - 1),
            ':' => {
                next.add(Lex::Plain, depth);
                next.add(Lex::Start, depth);
            }
            _ => next.add(Lex::Plain, depth),
        },
        Lex::PlainSpace => match c {
            _ if blank => next.add(Lex::PlainSpace, depth),
            '#' => next.add(Lex::Comment, depth),
            '\'' | '"' => {
                next.add(Lex::Plain, depth);
                after(Lex::Start, depth, c, next);
            }
            _ => after(Lex::Plain, depth, c, next),
        },
        Lex::Single => match c {
            '\'' => next.add(Lex::SingleQuote, depth),
            _ => next.add(Lex::Single, depth),
        },
        Lex::SingleQuote => match c {
            '\'' => next.add(Lex::Single, depth),
            _ => after(Lex::Start, depth, c, next),
        },
        Lex::Double => match c {
            '\\' => next.add(Lex::DoubleEscape, depth),
            '"' => next.add(Lex::Start, depth),
            _ => next.add(Lex::Double, depth),
        },
        Lex::DoubleEscape => next.add(Lex::Double, depth),
        Lex::Comment => match c {
            '\n' | '\r' => next.add(Lex::Start, depth),
            _ => next.add(Lex::Comment, depth),
        },
        Lex::Anchor => match c {
            _ if c.is_alphanumeric() || c == '-' || c == '_' => next.add(Lex::Anchor, depth),
            _ => after(Lex::Start, depth, c, next),
        },
        Lex::Tag => match c {
            _ if blank => next.add(Lex::Start, depth),
            _ => next.add(Lex::Tag, depth),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("name: {}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn the_400_kb_bracket_bomb_is_refused_by_the_depth_check() {
        let bomb = nested(200_000);
        assert_eq!(bomb.len(), 400_006);
        let err = from_str::<serde_json::Value>(&bomb).unwrap_err();
        assert_eq!(
            err,
            "flow collections ([…], {…}) nested deeper than 64 levels at line 1 column 71"
        );
        let braces = format!("a: {}", "{b: ".repeat(100_000));
        assert!(
            check_bounds(&braces)
                .unwrap_err()
                .contains("deeper than 64")
        );
    }

    #[test]
    fn nesting_up_to_the_limit_parses() {
        let value: serde_json::Value = from_str(&nested(MAX_DEPTH)).unwrap();
        assert!(value["name"].is_array());
        assert!(check_bounds(&nested(MAX_DEPTH + 1)).is_err());
    }

    #[test]
    fn closers_inside_quotes_or_comments_cannot_hide_the_depth() {
        // Each `]` here is a scalar or a comment, so the parser nests 100 levels.
        for unit in [
            "[ \"]\" ",
            "[ ']' ",
            "[ 'it''s ]' ",
            "[ # ]\n",
            "[ \"\\\"]\" ",
        ] {
            let text = format!("name: {}", unit.repeat(100));
            assert!(
                check_bounds(&text).unwrap_err().contains("deeper than 64"),
                "{unit:?}"
            );
        }
        // A quote earlier in the document that is not a quote to the parser hides nothing.
        for prefix in [
            "a: don't\n",
            "a: \"['\"\n",
            "a: x,'\n",
            "a: |\n  'x\n",
            "# it's\n",
        ] {
            let text = format!("{prefix}b: {}", "[ ']' ".repeat(100));
            assert!(check_bounds(&text).is_err(), "{prefix:?}");
        }
    }

    #[test]
    fn ordinary_documents_with_brackets_in_text_pass() {
        let text = "\
registry:
  insecure_registries: [\"a:5000\", 'b', c]   # comment with ] and [
  mirrors: {docker.io: \"m[1]\", 'x': [y, {z: w}]}
note: \"see [docs] and {braces}\"
quote: 'it''s [fine'
literal: |
  [unbalanced in a block scalar
anchors: [&a x, *a]
";
        check_bounds(text).unwrap();
        check_bounds("tag: !custom [a, b]\nuri: !<tag:x,2024:[y]> [z]\n").unwrap();
        let value: serde_json::Value = from_str(text).unwrap();
        assert_eq!(value["quote"], "it's [fine");
    }

    #[test]
    fn the_size_limit_is_checked_first() {
        let big = " ".repeat(MAX_BYTES + 1);
        assert_eq!(
            check_bounds(&big).unwrap_err(),
            format!(
                "the document is {} bytes, more than the 4 MiB limit",
                MAX_BYTES + 1
            )
        );
    }
}
