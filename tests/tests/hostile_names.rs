//! Names from an artifact that would read differently from what they are: a layer title or an
//! archive entry name with an escape sequence, a newline or a right-to-left override. The export
//! refuses them, naming the entry escaped (no control character reaches the terminal), and
//! leaves nothing in the destination.
#![allow(clippy::unwrap_used)]

use porter_core::display::{escape_remote, has_unsafe_chars};
use porter_e2e::cli::User;
use porter_e2e::{LayerSpec, Registry, TarEntry, block_on, publish_single};

/// Pulls `layer` as a single-manifest artifact with `-o out`; returns the error output.
fn export_fails(layer: LayerSpec) -> String {
    let reg = Registry::start();
    block_on(publish_single(&reg, "demo/names:1.0", &[layer], &[]));
    let user = User::new();
    let run = user.run(&[
        "pull",
        &reg.reference("demo/names:1.0"),
        "--insecure",
        "-o",
        "out",
    ]);
    let err = run.fails();
    assert!(
        err.lines().all(|line| !has_unsafe_chars(line)),
        "raw control characters: {err:?}"
    );
    assert!(!user.path().join("out").exists(), "nothing is exported");
    err
}

#[test]
fn a_layer_title_with_an_escape_sequence_or_an_override_is_refused_escaped() {
    for title in [
        "evil\u{1b}]0;owned\u{7}.bin",
        "two\nlines",
        "\u{202e}fdp.exe",
    ] {
        let err = export_fails(LayerSpec::binary(title, b"x".to_vec()));
        let expected = format!(
            "layer title \"{}\" contains control characters or bidirectional overrides",
            escape_remote(title)
        );
        assert!(err.contains(&expected), "{err}");
    }
}

#[test]
fn an_archive_entry_name_with_an_escape_sequence_or_an_override_is_refused_escaped() {
    for name in ["bin/\u{1b}[2Jtool", "gpj.\u{202e}exe", "a\rb"] {
        let layer = LayerSpec::targz_entries(&[
            TarEntry::File {
                path: "fine".into(),
                mode: 0o644,
                contents: b"ok".to_vec(),
            },
            TarEntry::File {
                path: name.into(),
                mode: 0o755,
                contents: b"x".to_vec(),
            },
        ]);
        let err = export_fails(layer);
        let expected = format!(
            "archive entry {} contains control characters or bidirectional overrides",
            escape_remote(name)
        );
        assert!(err.contains(&expected), "{err}");
    }
}
