//! Configuration in layers: defaults, then an optional `keyward.toml`, then `KEYWARD_*` variables.

use serde::Deserialize;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

#[derive(Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; `None` means SQLite in the data directory.
    pub database_url: Option<String>,
    /// The file holding the master key that seals signing keys; `None` means `<data_dir>/master.key`.
    pub master_key_file: Option<PathBuf>,
    pub log_format: LogFormat,
    /// On an empty installation, this value becomes the first owner token instead of a random one.
    pub bootstrap_token: Option<String>,
    /// Load balancers whose `X-Forwarded-For` names the client (for rate limits and audit).
    pub trusted_proxies: Vec<IpAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            master_key_file: None,
            log_format: LogFormat::Text,
            bootstrap_token: None,
            trusted_proxies: Vec::new(),
        }
    }
}

// Secrets stay out of debug output: the database URL may carry a password.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &self.database_url.as_ref().map(|url| redact_url(url)))
            .field("master_key_file", &self.master_key_file)
            .field("log_format", &self.log_format)
            .field("bootstrap_token", &self.bootstrap_token.as_ref().map(|_| "<set>"))
            .field("trusted_proxies", &self.trusted_proxies)
            .finish()
    }
}

/// The `keyward.toml` file: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    master_key_file: Option<PathBuf>,
    log_format: Option<LogFormat>,
    trusted_proxies: Option<Vec<IpAddr>>,
}

const VARIABLES: [&str; 7] = [
    "KEYWARD_LISTEN",
    "KEYWARD_DATA_DIR",
    "KEYWARD_DATABASE_URL",
    "KEYWARD_MASTER_KEY_FILE",
    "KEYWARD_LOG_FORMAT",
    "KEYWARD_BOOTSTRAP_TOKEN",
    "KEYWARD_TRUSTED_PROXIES",
];

impl Config {
    /// Defaults, then `file` (if given), then the `KEYWARD_*` entries of `vars`. Returns the
    /// configuration and warnings about variables that look like ours but are not known.
    pub fn load(
        file: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<(Config, Vec<String>)> {
        let mut config = Config::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read the configuration file {}: {e}", path.display()))?;
            let parsed: FileConfig =
                toml::from_str(&text).map_err(|e| anyhow::anyhow!("{} is not valid: {e}", path.display()))?;
            config.listen = parsed.listen.unwrap_or(config.listen);
            config.data_dir = parsed.data_dir.unwrap_or(config.data_dir);
            config.database_url = parsed.database_url.or(config.database_url);
            config.master_key_file = parsed.master_key_file.or(config.master_key_file);
            config.log_format = parsed.log_format.unwrap_or(config.log_format);
            config.trusted_proxies = parsed.trusted_proxies.unwrap_or(config.trusted_proxies);
        }
        let mut warnings = Vec::new();
        for (name, value) in vars {
            if !name.starts_with("KEYWARD_") {
                continue;
            }
            match name.as_str() {
                "KEYWARD_LISTEN" => {
                    config.listen = value.parse().map_err(|_| {
                        anyhow::anyhow!("KEYWARD_LISTEN `{value}` is not an address like 127.0.0.1:8080")
                    })?
                }
                "KEYWARD_DATA_DIR" => config.data_dir = PathBuf::from(value),
                "KEYWARD_DATABASE_URL" => config.database_url = Some(value),
                "KEYWARD_MASTER_KEY_FILE" => config.master_key_file = Some(PathBuf::from(value)),
                "KEYWARD_LOG_FORMAT" => {
                    config.log_format = match value.as_str() {
                        "text" => LogFormat::Text,
                        "json" => LogFormat::Json,
                        _ => anyhow::bail!("KEYWARD_LOG_FORMAT must be `text` or `json`, not `{value}`"),
                    }
                }
                "KEYWARD_BOOTSTRAP_TOKEN" => config.bootstrap_token = Some(value),
                "KEYWARD_TRUSTED_PROXIES" => {
                    config.trusted_proxies = value
                        .split(',')
                        .map(str::trim)
                        .filter(|ip| !ip.is_empty())
                        .map(|ip| {
                            ip.parse()
                                .map_err(|_| anyhow::anyhow!("KEYWARD_TRUSTED_PROXIES: `{ip}` is not an IP address"))
                        })
                        .collect::<anyhow::Result<_>>()?
                }
                // Test and tooling variables share the prefix; they are not configuration.
                // The log filter is read by the logger itself; test variables are not configuration.
                "KEYWARD_LOG" => {}
                other if other.starts_with("KEYWARD_TEST_") || other == "KEYWARD_REQUIRE_POSTGRES" => {}
                other => warnings.push(format!("unknown variable {other} (known: {})", VARIABLES.join(", "))),
            }
        }
        Ok((config, warnings))
    }

    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("keyward.db").display()))
    }

    pub fn master_key_file(&self) -> PathBuf {
        self.master_key_file.clone().unwrap_or_else(|| self.data_dir.join("master.key"))
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keyward.toml");
        std::fs::write(&file, "listen = \"0.0.0.0:9000\"\ndata_dir = \"/srv/kw\"\nlog_format = \"json\"\n").unwrap();
        let (config, warnings) = Config::load(
            Some(&file),
            vars(&[("KEYWARD_LISTEN", "127.0.0.1:7000"), ("KEYWARD_NOPE", "1"), ("KEYWARD_LOG", "debug")]),
        )
        .unwrap();
        assert_eq!(config.listen.port(), 7000);
        assert_eq!(config.data_dir, PathBuf::from("/srv/kw"));
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.database_url(), "sqlite:///srv/kw/keyward.db");
        assert_eq!(warnings.len(), 1);
        assert!(Config::load(None, vars(&[("KEYWARD_LOG_FORMAT", "xml")])).is_err());
        let (config, _) = Config::load(None, vars(&[("KEYWARD_TRUSTED_PROXIES", "10.0.0.1, ::1")])).unwrap();
        assert_eq!(config.trusted_proxies.len(), 2);
        assert!(Config::load(None, vars(&[("KEYWARD_TRUSTED_PROXIES", "10.0.0.0/8")])).is_err());
    }

    #[test]
    fn debug_hides_secrets() {
        let config = Config {
            database_url: Some("postgres://kw:hunter2@db/kw".into()),
            bootstrap_token: Some("kw_secret".into()),
            ..Config::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("kw_secret"), "{shown}");
    }
}
