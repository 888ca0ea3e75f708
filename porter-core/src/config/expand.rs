//! `$VAR`, `${VAR}` and leading `~/` expansion, as DS applies it to its config values.

use std::path::{Path, PathBuf};

/// An environment lookup; tests pass a map, the front ends the process environment.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Replaces `${NAME}` and `$NAME` with the variable's value (empty when unset, as Go's
/// `os.ExpandEnv` does). A `$` that does not start a name, or an unclosed `${`, is kept.
pub(super) fn expand_vars(text: &str, env: EnvLookup<'_>) -> String {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) if braced[..end].chars().all(is_name) && end > 0 => {
                    (&braced[..end], end + 2)
                }
                _ => ("", 0),
            }
        } else {
            let end = after.find(|c: char| !is_name(c)).unwrap_or(after.len());
            (&after[..end], end)
        };
        if name.is_empty() {
            out.push('$');
        } else {
            out.push_str(&env(name).unwrap_or_default());
        }
        rest = &after[consumed..];
    }
    out.push_str(rest);
    out
}

/// Expands a path: a leading `~` or `~/` becomes `home`, then variables are expanded. Paths
/// that are not UTF-8 (only possible for a home-derived default) are returned unchanged.
pub(super) fn expand_path(path: &Path, env: EnvLookup<'_>, home: &Path) -> PathBuf {
    let Some(text) = path.to_str() else {
        return path.to_path_buf();
    };
    let text = text.trim();
    if text == "~" {
        home.to_path_buf()
    } else if let Some(rest) = text.strip_prefix("~/") {
        home.join(expand_vars(rest, env))
    } else {
        PathBuf::from(expand_vars(text, env))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "USER" => Some("alice".into()),
            "TOKEN_1" => Some("t$1".into()),
            "DIR" => Some("/data".into()),
            _ => None,
        }
    }

    #[test]
    fn variables_expand_in_both_forms() {
        assert_eq!(expand_vars("${USER}", &env), "alice");
        assert_eq!(expand_vars("$USER-x", &env), "alice-x");
        assert_eq!(expand_vars("a${TOKEN_1}b", &env), "at$1b");
        assert_eq!(expand_vars("$MISSING|${MISSING}", &env), "|");
    }

    #[test]
    fn a_dollar_without_a_name_is_kept() {
        assert_eq!(expand_vars("pa$", &env), "pa$");
        assert_eq!(expand_vars("$ $-", &env), "$ $-");
        assert_eq!(expand_vars("${USER", &env), "${USER");
        assert_eq!(expand_vars("${}", &env), "${}");
        assert_eq!(expand_vars("${A B}", &env), "${A B}");
        assert_eq!(expand_vars("no vars", &env), "no vars");
    }

    #[test]
    fn paths_expand_home_then_variables() {
        let home = Path::new("/home/u");
        assert_eq!(
            expand_path(Path::new("~/.cache/ds"), &env, home),
            Path::new("/home/u/.cache/ds")
        );
        assert_eq!(expand_path(Path::new("~"), &env, home), home);
        assert_eq!(
            expand_path(Path::new(" $DIR/ds "), &env, home),
            Path::new("/data/ds")
        );
        assert_eq!(
            expand_path(Path::new("~user/x"), &env, home),
            Path::new("~user/x")
        );
        assert_eq!(
            expand_path(Path::new("/x/~/y"), &env, home),
            Path::new("/x/~/y")
        );
    }
}
