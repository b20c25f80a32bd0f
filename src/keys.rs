//! The keys a node accepts, each with a name: API keys (the REST routes on
//! sessions and `/metrics`) and host keys (starting a game). Several of each
//! may be valid at once, so a key is rotated by adding the new one, moving
//! its users over, and removing the old one, without a restart: the files
//! are read again on `SIGHUP`.
//!
//! Sources: `--api-key`/`--host-key` (one key each, named `api-key` and
//! `host-key`) and `--api-keys FILE`/`--host-keys FILE`, one `NAME KEY` a
//! line (`#` starts a comment). A key is compared with every configured key
//! in constant time; logs and errors name a key by its name, never show it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::auth::constant_time_eq;

/// Which keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Api,
    Host,
}

#[derive(Debug)]
struct NamedKey {
    name: Arc<str>,
    key: Box<str>,
}

/// Where the keys come from (the node's flags).
#[derive(Debug, Clone, Default)]
pub(crate) struct KeySources {
    pub api_flag: Option<String>,
    pub host_flag: Option<String>,
    pub api_file: Option<PathBuf>,
    pub host_file: Option<PathBuf>,
}

/// The keys in force.
#[derive(Debug)]
pub(crate) struct Keys {
    sources: KeySources,
    api: RwLock<Arc<[NamedKey]>>,
    host: RwLock<Arc<[NamedKey]>>,
}

impl Keys {
    /// Reads every source; a file that cannot be read or has a bad line is
    /// an error (the node does not start with keys it did not mean).
    pub(crate) fn load(sources: KeySources) -> Result<Keys, String> {
        let api = read_keys(
            sources.api_flag.as_deref(),
            "api-key",
            sources.api_file.as_deref(),
        )?;
        let host = read_keys(
            sources.host_flag.as_deref(),
            "host-key",
            sources.host_file.as_deref(),
        )?;
        Ok(Keys {
            sources,
            api: RwLock::new(api.into()),
            host: RwLock::new(host.into()),
        })
    }

    /// Reads the files again. On an error the keys in force stay as they
    /// were. Returns what is in force now, by name.
    pub(crate) fn reload(&self) -> Result<String, String> {
        let s = &self.sources;
        let api = read_keys(s.api_flag.as_deref(), "api-key", s.api_file.as_deref())?;
        let host = read_keys(s.host_flag.as_deref(), "host-key", s.host_file.as_deref())?;
        *self.api.write().unwrap_or_else(|e| e.into_inner()) = api.into();
        *self.host.write().unwrap_or_else(|e| e.into_inner()) = host.into();
        Ok(self.summary())
    }

    /// The keys in force, by name (for the log).
    pub(crate) fn summary(&self) -> String {
        let names = |kind| {
            let keys = self.of(kind);
            match keys.is_empty() {
                true => "none".to_owned(),
                false => keys.iter().map(|k| &*k.name).collect::<Vec<_>>().join(", "),
            }
        };
        format!(
            "API keys: {}; host keys: {}",
            names(KeyKind::Api),
            names(KeyKind::Host)
        )
    }

    /// Whether any key of `kind` is configured (without one, what it
    /// guards is off, or open: see the callers).
    pub(crate) fn any(&self, kind: KeyKind) -> bool {
        !self.of(kind).is_empty()
    }

    /// The name of the key of `kind` that `given` is, if any. Every key is
    /// compared, in time that depends only on the lengths.
    pub(crate) fn check(&self, kind: KeyKind, given: Option<&str>) -> Option<Arc<str>> {
        let given = given?;
        let mut found = None;
        for k in self.of(kind).iter() {
            if constant_time_eq(k.key.as_bytes(), given.as_bytes()) && found.is_none() {
                found = Some(k.name.clone());
            }
        }
        found
    }

    fn of(&self, kind: KeyKind) -> Arc<[NamedKey]> {
        let keys = match kind {
            KeyKind::Api => &self.api,
            KeyKind::Host => &self.host,
        };
        keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The flag's key (under `flag_name`) and the file's, in that order.
fn read_keys(
    flag: Option<&str>,
    flag_name: &str,
    file: Option<&Path>,
) -> Result<Vec<NamedKey>, String> {
    let mut keys = Vec::new();
    if let Some(key) = flag.filter(|k| !k.is_empty()) {
        keys.push(NamedKey {
            name: flag_name.into(),
            key: key.into(),
        });
    }
    let Some(file) = file else {
        return Ok(keys);
    };
    let shown = file.display();
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read the keys file {shown}: {e}"))?;
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let at = format!("{shown}:{}", i + 1);
        let mut words = line.split_whitespace();
        let (Some(name), Some(key), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!(
                "{at}: a line is a name and a key, separated by a space"
            ));
        };
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(format!(
                "{at}: a key's name is letters, digits, '-', '_' and '.' (it is shown in logs), got {name:?}"
            ));
        }
        if keys.iter().any(|k: &NamedKey| &*k.name == name) {
            return Err(format!("{at}: the name {name} is given twice"));
        }
        keys.push(NamedKey {
            name: name.into(),
            key: key.into(),
        });
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn every_key_counts_and_is_known_by_its_name() {
        let (_dir, path) =
            with_file("# the grading service\ngrading k-grading-1\n\nci  k-ci-2 # CI\n");
        let keys = Keys::load(KeySources {
            api_flag: Some("k-flag".into()),
            api_file: Some(path.clone()),
            ..Default::default()
        })
        .unwrap();
        let name = |given| keys.check(KeyKind::Api, Some(given)).map(|n| n.to_string());
        assert_eq!(name("k-grading-1").as_deref(), Some("grading"));
        assert_eq!(name("k-ci-2").as_deref(), Some("ci"));
        assert_eq!(name("k-flag").as_deref(), Some("api-key"));
        assert_eq!(name("k-ci-"), None);
        assert_eq!(name("k-ci-2 "), None);
        assert_eq!(keys.check(KeyKind::Api, None), None);
        assert!(!keys.any(KeyKind::Host));
        assert_eq!(
            keys.check(KeyKind::Host, Some("k-ci-2")),
            None,
            "an API key is not a host key"
        );
        assert_eq!(
            keys.summary(),
            "API keys: api-key, grading, ci; host keys: none"
        );

        // Rotated: the file changes, the keys follow at the next reload.
        std::fs::write(&path, "ci k-ci-3\n").unwrap();
        keys.reload().unwrap();
        assert_eq!(name("k-ci-2"), None);
        assert_eq!(name("k-ci-3").as_deref(), Some("ci"));
        // A broken file leaves the keys in force.
        std::fs::write(&path, "ci\n").unwrap();
        let e = keys.reload().unwrap_err();
        assert!(
            e.ends_with("keys:1: a line is a name and a key, separated by a space"),
            "{e}"
        );
        assert_eq!(name("k-ci-3").as_deref(), Some("ci"));
    }

    #[test]
    fn a_bad_file_is_named_with_its_line_and_never_shows_a_key() {
        for (text, says) in [
            ("ok k1\nbad name k2\n", ":2: a line is a name and a key"),
            ("ok k1\nok k2\n", ":2: the name ok is given twice"),
            ("ok\u{e9} k1\n", ":1: a key's name is letters"),
        ] {
            let (_dir, path) = with_file(text);
            let e = Keys::load(KeySources {
                host_file: Some(path),
                ..Default::default()
            })
            .unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
            assert!(!e.contains("k1") && !e.contains("k2"), "{e}");
        }
        let e = Keys::load(KeySources {
            api_file: Some("/nonexistent/keys".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            e.starts_with("cannot read the keys file /nonexistent/keys"),
            "{e}"
        );
    }
}
