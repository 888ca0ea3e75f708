//! DS operation arguments: `key=value` strings with the semantics of DS's `types.PluginArgs`
//! (ds-contract §4.1), and the raw CLI tokens older hosts sent, converted the way newer hosts
//! convert them (§4 step 3).
//!
//! Gaps in `arg<N>`, repeated keys and empty keys are tolerated as §4.1 says. One limit is
//! ours: an argument longer than [`MAX_ARG_BYTES`] is refused with an error naming it, before
//! it can reach a path, a reference or an error message.

use std::collections::HashMap;

/// Parsed `key=value` arguments. Keys are case-sensitive; repeats keep their order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PluginArgs {
    values: HashMap<String, Vec<String>>,
    positionals: Vec<String>,
}

impl PluginArgs {
    /// Parses what the host sent: `key=value` strings, or raw tokens from a G1 host (any token
    /// that starts with `-` or has no `=`), which are first normalised like G2+ hosts do.
    pub fn from_request(args: &[String]) -> PluginArgs {
        // Blank strings are skipped by both parsers, so they say nothing about the form.
        let legacy = args
            .iter()
            .any(|a| !a.trim().is_empty() && (a.starts_with('-') || !a.contains('=')));
        if legacy {
            PluginArgs::new(&normalize_tokens(args))
        } else {
            PluginArgs::new(args)
        }
    }

    /// `NewPluginArgs`: split at the first `=`, trim both sides, skip empty keys; `arg<N>` keys
    /// also fill positional slot N (last write wins).
    pub fn new(pairs: &[impl AsRef<str>]) -> PluginArgs {
        let mut args = PluginArgs::default();
        for pair in pairs.iter().map(AsRef::as_ref).filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (key, value) = (key.trim(), value.trim());
            if key.is_empty() {
                continue;
            }
            args.values
                .entry(key.to_owned())
                .or_default()
                .push(value.to_owned());
            if let Some(slot) = positional_slot(key) {
                if args.positionals.len() <= slot {
                    args.positionals.resize(slot + 1, String::new());
                }
                args.positionals[slot] = value.to_owned();
            }
        }
        args
    }

    /// The first value of `key`.
    pub fn first(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    /// The first value of the first key that exists, even when that value is empty.
    pub fn first_any(&self, keys: &[&str]) -> Option<&str> {
        keys.iter().find_map(|k| self.first(k))
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> &[String] {
        self.values.get(key).map_or(&[], Vec::as_slice)
    }

    /// `Bool`: absent ⇒ None; `""` ⇒ true; `true,t,1,yes,y,on` / `false,f,0,no,n,off` (any
    /// case); anything else ⇒ None.
    pub fn bool(&self, key: &str) -> Option<bool> {
        let value = self.first(key)?;
        match value.to_ascii_lowercase().as_str() {
            "" | "true" | "t" | "1" | "yes" | "y" | "on" => Some(true),
            "false" | "f" | "0" | "no" | "n" | "off" => Some(false),
            _ => None,
        }
    }

    /// `BoolAny`: the first key whose value parses as a bool.
    pub fn bool_any(&self, keys: &[&str]) -> Option<bool> {
        keys.iter().find_map(|k| self.bool(k))
    }

    /// Positional slots `0..=max`, gaps as `""`.
    pub fn positionals(&self) -> &[String] {
        &self.positionals
    }

    /// Positionals trimmed, empties removed (porter's `cleanedValues`).
    pub fn cleaned_positionals(&self) -> Vec<String> {
        cleaned(self.positionals())
    }
}

/// Longest `key=value` string accepted: what one command-line argument can hold on Linux
/// (`MAX_ARG_STRLEN`), so nothing typed after `ds porter …` is refused.
pub const MAX_ARG_BYTES: usize = 128 * 1024;

/// Refuses an argument longer than [`MAX_ARG_BYTES`], naming its key and the start of it.
pub fn check_lengths(args: &[String]) -> Result<(), String> {
    let Some(long) = args.iter().find(|a| a.len() > MAX_ARG_BYTES) else {
        return Ok(());
    };
    let key = long
        .split_once('=')
        .map_or(long.as_str(), |(k, _)| k)
        .trim();
    Err(format!(
        "argument {} is {} bytes long, more than the {MAX_ARG_BYTES} accepted: {:?}…",
        prefix(key, 64),
        long.len(),
        prefix(long, 48)
    ))
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn prefix(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Trimmed values with empties removed.
pub fn cleaned(values: &[String]) -> Vec<String> {
    values
        .iter()
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Highest `arg<N>` slot that fills a positional; a higher one is an ordinary key, so a host
/// cannot make the plugin allocate a slot table of any size it likes.
const MAX_POSITIONAL_SLOT: usize = 1024;

/// `arg<N>` → N, with Go `strconv.Atoi` rules (an optional sign; negative slots do not count).
fn positional_slot(key: &str) -> Option<usize> {
    let digits = key.strip_prefix("arg")?;
    let unsigned = digits.strip_prefix('+').unwrap_or(digits);
    if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    unsigned
        .parse()
        .ok()
        .filter(|slot| *slot <= MAX_POSITIONAL_SLOT)
}

/// Converts raw CLI tokens into `key=value` strings as DS's `parsePluginInvocation` does.
pub fn normalize_tokens(tokens: &[String]) -> Vec<String> {
    let tokens: Vec<&str> = tokens
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .collect();
    let mut out = Vec::new();
    let mut positional = 0;
    let mut push_positional = |out: &mut Vec<String>, value: &str| {
        out.push(format!("arg{positional}={value}"));
        positional += 1;
    };
    let takes_value = |next: Option<&&str>| next.is_some_and(|n| !is_flag_like(n));
    let mut i = 0;
    while i < tokens.len() {
        let token = tokens[i];
        i += 1;
        if token == "--" {
            for rest in &tokens[i..] {
                push_positional(&mut out, rest);
            }
            break;
        }
        if token == "-" || !token.starts_with('-') {
            push_positional(&mut out, token);
            continue;
        }
        let long = token.starts_with("--");
        let body = token
            .strip_prefix("--")
            .or_else(|| token.strip_prefix('-'))
            .unwrap_or(token);
        if let Some((key, value)) = body.split_once('=') {
            out.push(format!("{}={}", normalize_key(key), value.trim()));
        } else if !long && body.chars().count() > 1 {
            for c in body.chars() {
                out.push(format!("{}=true", c.to_lowercase()));
            }
        } else if takes_value(tokens.get(i)) {
            out.push(format!("{}={}", normalize_key(body), tokens[i]));
            i += 1;
        } else {
            out.push(format!("{}=true", normalize_key(body)));
        }
    }
    out
}

fn normalize_key(key: &str) -> String {
    key.trim().to_lowercase()
}

/// A flag-like token starts with `-` and is not a negative number.
fn is_flag_like(token: &str) -> bool {
    token.starts_with('-') && token.len() > 1 && token[1..].parse::<f64>().is_err()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args(pairs: &[&str]) -> PluginArgs {
        PluginArgs::new(pairs)
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn first_key_that_yields_a_bool_wins() {
        // Conformance case 27.
        assert_eq!(
            args(&["h=true", "help=false", "o=path"]).bool_any(&["help", "h"]),
            Some(false)
        );
    }

    #[test]
    fn positional_gaps_are_kept_and_cleaned_away() {
        // Conformance case 28.
        let a = args(&["arg0=a", "arg2=c"]);
        assert_eq!(a.positionals(), ["a", "", "c"]);
        assert_eq!(a.cleaned_positionals(), ["a", "c"]);
    }

    #[test]
    fn first_existing_key_wins_even_when_empty() {
        // Conformance case 29.
        assert_eq!(
            args(&["ref=", "arg0=REF"]).first_any(&["ref", "artifact", "arg0"]),
            Some("")
        );
    }

    #[test]
    fn bool_parsing_follows_go() {
        // Conformance case 30.
        assert_eq!(args(&["flag="]).bool("flag"), Some(true));
        assert_eq!(args(&["flag=maybe"]).bool("flag"), None);
        assert_eq!(args(&["flag=OFF"]).bool("flag"), Some(false));
        assert_eq!(args(&[]).bool("flag"), None);
    }

    #[test]
    fn keys_and_values_are_trimmed_and_repeats_kept() {
        let a = args(&[
            " platform = linux/amd64 ",
            "platform=linux/arm64",
            "=x",
            "",
            "novalue",
            "arg+1=p",
        ]);
        assert_eq!(a.all("platform"), ["linux/amd64", "linux/arm64"]);
        assert_eq!(a.first("novalue"), Some(""));
        assert_eq!(a.positionals(), ["", "p"]);
        assert_eq!(a.first(""), None);
    }

    #[test]
    fn raw_tokens_are_normalised_like_ds_does() {
        // Conformance cases 18–23, from the plugin side.
        let cases: [(&[&str], &[&str]); 6] = [
            (
                &["--platform", "linux/arm64", "-o", "./dist", "REF"],
                &["platform=linux/arm64", "o=./dist", "arg0=REF"],
            ),
            (
                &["--insecure", "REF", "-o", "out"],
                &["insecure=REF", "o=out"],
            ),
            (
                &["REF", "--insecure", "-o", "out"],
                &["arg0=REF", "insecure=true", "o=out"],
            ),
            (&["REF", "-o"], &["arg0=REF", "o=true"]),
            (
                &["-abc", "REF"],
                &["a=true", "b=true", "c=true", "arg0=REF"],
            ),
            (
                &["-o=x", "--Output=Y", "--level", "-5", "--", "-x", "y"],
                &["o=x", "output=Y", "level=-5", "arg0=-x", "arg1=y"],
            ),
        ];
        for (tokens, expected) in cases {
            assert_eq!(
                normalize_tokens(&strings(tokens)),
                strings(expected),
                "{tokens:?}"
            );
        }
    }

    #[test]
    fn blank_strings_do_not_switch_to_the_legacy_form() {
        let a = PluginArgs::from_request(&strings(&[" ", "\t", "arg0=REF", "=ghost"]));
        assert_eq!(a.first("arg0"), Some("REF"));
        assert_eq!(a.positionals(), ["REF"]);
    }

    #[test]
    fn an_argument_longer_than_a_command_line_argument_is_refused_by_name() {
        let fits = format!("o={}", "x".repeat(MAX_ARG_BYTES - 2));
        assert_eq!(check_lengths(&strings(&["arg0=REF", &fits])), Ok(()));
        let long = format!("{fits}x");
        let error = check_lengths(&strings(&["arg0=REF", &long])).unwrap_err();
        assert!(
            error.starts_with(
                "argument o is 131073 bytes long, more than the 131072 accepted: \"o=xxx"
            ),
            "{error}"
        );
        let key = format!("{}é=v", "k".repeat(MAX_ARG_BYTES));
        let error = check_lengths(&[key]).unwrap_err();
        assert!(
            error.starts_with(&format!("argument {} is", "k".repeat(64))),
            "{error}"
        );
        assert!(error.len() < 300, "{error}");
    }

    #[test]
    fn legacy_form_is_detected() {
        let a = PluginArgs::from_request(&strings(&["--platform", "linux/arm64", "REF"]));
        assert_eq!(a.first("platform"), Some("linux/arm64"));
        assert_eq!(a.positionals(), ["REF"]);
        let b = PluginArgs::from_request(&strings(&["arg0=REF", "o=out"]));
        assert_eq!(b.first("o"), Some("out"));
    }

    #[test]
    fn a_huge_arg_slot_is_an_ordinary_key_not_a_positional() {
        // Found by `fuzz_tests`: `arg861112804025855447` made the plugin abort allocating slots.
        let parsed = args(&[
            "arg0=a",
            "arg861112804025855447=x",
            "arg18446744073709551615=y",
        ]);
        assert_eq!(parsed.positionals(), ["a"]);
        assert_eq!(parsed.first("arg861112804025855447"), Some("x"));
        assert_eq!(args(&["arg1024=z"]).positionals().len(), 1025);
    }
}
