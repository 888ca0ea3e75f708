//! skopeo, the reference reader of what ds-porter writes (registries and OCI layouts).

use std::process::Command;

/// Runs skopeo with `args`, asserting it succeeds; returns its stdout.
pub fn skopeo(args: &[&str]) -> Vec<u8> {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run skopeo: {e}"));
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The manifest or index a registry serves for `reference` (`host/repo:tag|@digest`, plain HTTP
/// or TLS without verification), byte for byte.
pub fn skopeo_raw(reference: &str) -> Vec<u8> {
    skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ])
}
