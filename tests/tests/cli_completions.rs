//! Shell completion scripts that work: the bash script is sourced into a real bash and its
//! completion function is called as bash calls it on <Tab> (`COMP_WORDS`, `COMP_CWORD`,
//! `COMP_LINE`, `COMP_POINT`), for subcommands, options and values; fish answers `complete -C`
//! with the script loaded; zsh loads its script under `compinit`.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use porter_e2e::cli::User;

/// Writes `ds-porter completions <shell>` to a file in the user's directory.
fn script(user: &User, shell: &str) -> std::path::PathBuf {
    let run = user.run(&["completions", shell]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let path = user.path().join(format!("completion.{shell}"));
    std::fs::write(&path, run.stdout()).unwrap();
    path
}

/// What bash offers for the command line `words` (the last word is the one being completed),
/// calling the function the script registered for `ds-porter`, as bash does.
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let program = r#"
source "$1"; shift
COMP_WORDS=("$@")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=${#COMP_LINE}
COMPREPLY=()
spec=$(complete -p ds-porter) || exit 3
fn=$(sed -E 's/.*-F ([^ ]+) .*/\1/' <<<"$spec")
"$fn" ds-porter "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let out = Command::new("bash")
        .arg("--norc")
        .arg("-c")
        .arg(program)
        .arg("bash")
        .arg(script)
        .args(words)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{words:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn sorted(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items
}

#[test]
fn bash_completes_subcommands_at_every_level() {
    let user = User::new();
    let script = script(&user, "bash");
    let top = bash_complete(&script, &["ds-porter", ""]);
    for command in ["pull", "push", "list", "cache", "version", "completions"] {
        assert!(top.contains(&command.to_owned()), "{command}: {top:?}");
    }
    assert_eq!(
        bash_complete(&script, &["ds-porter", "pu"]),
        ["pull", "push"]
    );
    let cache = bash_complete(&script, &["ds-porter", "cache", ""]);
    assert!(cache.contains(&"prune".to_owned()), "{cache:?}");
    assert!(cache.contains(&"verify".to_owned()), "{cache:?}");
    assert_eq!(
        bash_complete(&script, &["ds-porter", "cache", "pr"]),
        ["prune"]
    );
}

#[test]
fn bash_completes_the_options_of_each_subcommand() {
    let user = User::new();
    let script = script(&user, "bash");
    assert_eq!(
        bash_complete(&script, &["ds-porter", "pull", "--pla"]),
        ["--platform"]
    );
    assert_eq!(
        bash_complete(&script, &["ds-porter", "pull", "ref", "--all"]),
        ["--all-arch"]
    );
    assert_eq!(
        bash_complete(&script, &["ds-porter", "push", "--no"]),
        ["--no-latest"]
    );
    assert_eq!(
        bash_complete(&script, &["ds-porter", "push", "--dry"]),
        ["--dry-run"]
    );
    assert_eq!(
        bash_complete(&script, &["ds-porter", "push", "--manifest-"]),
        ["--manifest-annotation"]
    );
    assert_eq!(
        sorted(bash_complete(
            &script,
            &["ds-porter", "cache", "prune", "--"]
        ))
        .iter()
        .filter(|o| ["--max-size", "--ttl"].contains(&o.as_str()))
        .count(),
        2
    );
    assert_eq!(
        bash_complete(&script, &["ds-porter", "cache", "verify", "--rep"]),
        ["--repair"]
    );
    assert_eq!(
        bash_complete(&script, &["ds-porter", "list", "--for"]),
        ["--format"]
    );
}

#[test]
fn bash_completes_values_not_file_names() {
    let user = User::new();
    // A file whose name starts like a level: offered only if values fell back to file names.
    std::fs::write(user.path().join("information.txt"), "").unwrap();
    let script = script(&user, "bash");
    let levels = ["debug", "error", "info", "trace", "warn"];
    for words in [
        &["ds-porter", "--log-level", ""][..],
        &["ds-porter", "pull", "ref", "--log-level", ""],
        &["ds-porter", "cache", "prune", "--log-level", ""],
    ] {
        assert_eq!(sorted(bash_complete(&script, words)), levels, "{words:?}");
    }
    assert_eq!(
        bash_complete(&script, &["ds-porter", "list", "--log-level", "inf"]),
        ["info"]
    );
    let platforms = bash_complete(&script, &["ds-porter", "pull", "ref", "--platform", ""]);
    for platform in [
        "linux/amd64",
        "linux/arm64",
        "darwin/arm64",
        "windows/amd64",
    ] {
        assert!(
            platforms.contains(&platform.to_owned()),
            "{platform}: {platforms:?}"
        );
    }
    assert_eq!(
        bash_complete(&script, &["ds-porter", "pull", "--platform", "darwin/"]),
        ["darwin/amd64", "darwin/arm64"]
    );
    assert_eq!(
        sorted(bash_complete(
            &script,
            &["ds-porter", "list", "--format", ""]
        )),
        ["json", "table"]
    );
    assert_eq!(
        bash_complete(&script, &["ds-porter", "completions", "fi"]),
        ["fish"]
    );
}

#[test]
fn the_fish_script_completes_subcommands_options_and_values() {
    let user = User::new();
    let script = script(&user, "fish");
    let complete = |line: &str| -> Vec<String> {
        let out = Command::new("fish")
            .arg("--no-config")
            .arg("-c")
            .arg(format!(
                "source {}; complete -C {}",
                script.display(),
                shell_quote(line)
            ))
            .current_dir(user.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split('\t').next().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(complete("ds-porter pull --pla"), ["--platform"]);
    let cache = complete("ds-porter cache ");
    assert!(cache.contains(&"prune".to_owned()), "{cache:?}");
    assert_eq!(
        sorted(complete("ds-porter pull ref --log-level ")),
        ["debug", "error", "info", "trace", "warn"]
    );
    assert!(complete("ds-porter pull ref --platform ").contains(&"linux/arm64".to_owned()));
}

#[test]
fn the_zsh_script_loads_under_compinit() {
    let user = User::new();
    let dir = user.path().join("zfunc");
    std::fs::create_dir(&dir).unwrap();
    let script = script(&user, "zsh");
    std::fs::rename(&script, dir.join("_ds-porter")).unwrap();
    let out = Command::new("zsh")
        .arg("-f")
        .arg("-c")
        .arg(format!(
            "fpath=({} $fpath); autoload -U compinit; compinit -u -d {}/zcompdump; \
             print -r -- ${{_comps[ds-porter]}}; autoload -U +X _ds-porter && print loaded",
            dir.display(),
            user.path().display()
        ))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "_ds-porter\nloaded\n");
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"\'"))
}
