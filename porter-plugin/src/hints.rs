//! The engine's hints in this binary's terms: CLI flags for people at a terminal, DS arguments
//! and settings for the plugin's `error` field. Core says which remedy applies; only here is it
//! named.

use porter_core::error::Hint;

/// Who reads the hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// The standalone command line.
    Cli,
    /// DS, through the plugin's `error` field.
    Plugin,
}

/// One sentence telling what to change.
pub fn render(hint: &Hint, surface: Surface) -> String {
    let insecure = match surface {
        Surface::Cli => "pass --insecure",
        Surface::Plugin => "pass insecure=true",
    };
    match hint {
        Hint::PlainHttp { host } => format!(
            "{host} answered in plain HTTP: if it only speaks plain HTTP, {insecure} or list it \
             in Registry.InsecureRegistries"
        ),
        Hint::PrivateCa { host } => format!(
            "to trust the CA that signed {host}'s certificate, set settings.porter.ca_file \
             (DS_SETTINGS_PORTER_CA_FILE) or put it in ~/.config/ds/certs.d/{host}/ca.crt"
        ),
        Hint::Credentials { host } => format!(
            "check the credentials for {host} (DS_AUTH_CREDENTIALS, Auth.Credentials in the DS \
             config, or docker login {host})"
        ),
        Hint::RepairCache => {
            "run `ds-porter cache verify --repair` to fetch damaged blobs again".to_owned()
        }
        Hint::NothingCached => {
            "the content did not match its digest or size; nothing was cached".to_owned()
        }
        _ => String::new(),
    }
}

/// An engine error as the plugin's `error` field carries it: the message, then the hint.
pub fn plugin_error(err: &porter_core::Error) -> String {
    match err.hint().map(|h| render(&h, Surface::Plugin)) {
        Some(hint) if !hint.is_empty() => format!("{err} (hint: {hint})"),
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_surface_names_its_own_remedy() {
        let hint = Hint::PlainHttp {
            host: "127.0.0.1:5000".into(),
        };
        assert!(render(&hint, Surface::Cli).contains("--insecure"));
        let plugin = render(&hint, Surface::Plugin);
        assert!(
            plugin.contains("insecure=true") && !plugin.contains("--"),
            "{plugin}"
        );
    }
}
