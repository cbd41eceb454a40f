//! The host's configuration file: workers and their bindings, with keys that mirror
//! `wrangler.toml` (`name`, `vars`, `services = [{ binding, service, entrypoint }]`).

use serde::Deserialize;
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// A configuration file that could not be used: where, which key, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {key}: {message}", file.display())]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// The key, as a path (`worker[1].services[0].service`), or `(file)` for the file as
    /// a whole.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// The whole file: a list of `[[worker]]` tables.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where Durable Objects keep their storage, relative to the current directory
    /// (overridden by [`HostBuilder::data_dir`](super::HostBuilder::data_dir); default
    /// `.capwire-data`).
    pub data_dir: Option<PathBuf>,
    /// The secret hosts present to each other to reach the Durable Objects of a worker that
    /// runs on another host (overridden by
    /// [`HostBuilder::host_secret`](super::HostBuilder::host_secret)). Both hosts need the
    /// same one; keep it out of files others can read.
    pub host_secret: Option<String>,
    /// The workers.
    #[serde(default, rename = "worker")]
    pub workers: Vec<WorkerConfig>,
}

/// One `[[worker]]`: run here (`main`) or reached elsewhere (`url`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// The service name bindings refer to.
    pub name: String,
    /// The registered entrypoint type serving this worker's default entrypoint, when the
    /// worker runs in this host.
    pub main: Option<String>,
    /// Named entrypoints (registered type names) this worker also exports.
    #[serde(default)]
    pub entrypoints: Vec<String>,
    /// For a worker that runs elsewhere: its base URL (`ws://host:port`). The default
    /// entrypoint is at `/`, a named one at `/<Name>`.
    pub url: Option<String>,
    /// Where to serve this worker (`127.0.0.1:8787`), for other hosts and capnweb clients.
    pub listen: Option<String>,
    /// Variables: strings or any JSON-like value.
    #[serde(default)]
    pub vars: toml::Table,
    /// Service bindings.
    #[serde(default)]
    pub services: Vec<ServiceBinding>,
    /// Durable Object namespace bindings.
    #[serde(default)]
    pub durable_objects: Vec<DurableObjectBinding>,
    /// The web origins whose pages may open RPC sessions with this worker
    /// (`["https://app.example"]`); others get `403`. Without it, the host's
    /// [`CorsPolicy`](crate::CorsPolicy) applies.
    pub allowed_origins: Option<Vec<String>>,
}

/// `{ name = "COUNTER", class_name = "Counter" }`: a namespace of a class this worker
/// defines; with `script_name = "other-worker"`, of a class that worker defines.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DurableObjectBinding {
    /// The name the worker looks the binding up by.
    pub name: String,
    /// The class: a name registered with
    /// [`HostBuilder::durable_object`](super::HostBuilder::durable_object).
    pub class_name: String,
    /// The worker that defines the class, when it is not this one.
    pub script_name: Option<String>,
}

/// `{ binding = "WORKER_B", service = "worker-b", entrypoint = "AdminEntrypoint" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceBinding {
    /// The name the worker looks the binding up by.
    pub binding: String,
    /// The worker it leads to.
    pub service: String,
    /// A named entrypoint of that worker; its default entrypoint when absent.
    pub entrypoint: Option<String>,
}

struct Problems<'a> {
    file: &'a Path,
    list: Vec<ConfigError>,
}

impl Problems<'_> {
    fn add(&mut self, key: impl fmt::Display, message: impl fmt::Display) {
        self.list.push(ConfigError {
            file: self.file.to_owned(),
            key: key.to_string(),
            message: message.to_string(),
        });
    }
}

impl Config {
    /// Reads and checks `path`. `registered` are the entrypoint type names the program
    /// registered. Every problem found is reported, each with the file and key.
    pub fn load(path: &Path, registered: &HashSet<String>) -> Result<Config, Vec<ConfigError>> {
        Config::load_with(path, registered, &HashSet::new())
    }

    /// [`Config::load`], with the Durable Object class names the program registered.
    pub fn load_with(
        path: &Path,
        registered: &HashSet<String>,
        classes: &HashSet<String>,
    ) -> Result<Config, Vec<ConfigError>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![ConfigError {
                file: path.to_owned(),
                key: "(file)".into(),
                message: format!("cannot read: {e}"),
            }]
        })?;
        Config::parse_with(&text, path, registered, classes)
    }

    /// Parses and checks configuration text (`path` names it in errors).
    pub fn parse(
        text: &str,
        path: &Path,
        registered: &HashSet<String>,
    ) -> Result<Config, Vec<ConfigError>> {
        Config::parse_with(text, path, registered, &HashSet::new())
    }

    /// [`Config::parse`], with the Durable Object class names the program registered.
    pub fn parse_with(
        text: &str,
        path: &Path,
        registered: &HashSet<String>,
        classes: &HashSet<String>,
    ) -> Result<Config, Vec<ConfigError>> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let key = match e.span() {
                Some(span) => {
                    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                    format!("line {line}")
                }
                None => "(file)".into(),
            };
            vec![ConfigError {
                file: path.to_owned(),
                key,
                message: e.message().to_owned(),
            }]
        })?;
        let mut p = Problems {
            file: path,
            list: Vec::new(),
        };
        config.check(&mut p, registered);
        config.check_durable_objects(&mut p, classes);
        if p.list.is_empty() {
            Ok(config)
        } else {
            Err(p.list)
        }
    }

    fn check(&self, p: &mut Problems<'_>, registered: &HashSet<String>) {
        let mut names = HashSet::new();
        for (i, w) in self.workers.iter().enumerate() {
            let at = format!("worker[{i}]");
            if !names.insert(w.name.as_str()) {
                p.add(
                    format!("{at}.name"),
                    format!("two workers are named {:?}", w.name),
                );
            }
            match (&w.main, &w.url) {
                (Some(_), Some(_)) => p.add(
                    &at,
                    "a worker has either `main` (runs here) or `url` (runs elsewhere), not both",
                ),
                (None, None) => p.add(
                    &at,
                    "a worker needs `main` (runs here) or `url` (runs elsewhere)",
                ),
                _ => {}
            }
            let types = w.main.iter().map(|m| ("main".to_owned(), m)).chain(
                w.entrypoints
                    .iter()
                    .enumerate()
                    .map(|(k, e)| (format!("entrypoints[{k}]"), e)),
            );
            for (key, ty) in types {
                if w.url.is_none() && !registered.contains(ty) {
                    p.add(
                        format!("{at}.{key}"),
                        format!("no entrypoint type {ty:?} is registered with the host"),
                    );
                }
            }
            if let Some(url) = &w.url
                && !(url.starts_with("ws://") || url.starts_with("wss://"))
            {
                p.add(
                    format!("{at}.url"),
                    format!("{url:?} is not a ws:// or wss:// URL"),
                );
            }
            if let Some(listen) = &w.listen {
                if w.url.is_some() {
                    p.add(
                        format!("{at}.listen"),
                        "a worker that runs elsewhere is not served here",
                    );
                } else if listen.parse::<std::net::SocketAddr>().is_err() {
                    p.add(
                        format!("{at}.listen"),
                        format!("{listen:?} is not an address such as 127.0.0.1:8787"),
                    );
                }
            }
            let mut bindings = HashSet::new();
            for (k, b) in w.services.iter().enumerate() {
                let at = format!("{at}.services[{k}]");
                if !bindings.insert(b.binding.as_str()) || w.vars.contains_key(&b.binding) {
                    p.add(
                        format!("{at}.binding"),
                        format!("the name {:?} is bound twice", b.binding),
                    );
                }
                let Some(target) = self.workers.iter().find(|t| t.name == b.service) else {
                    p.add(
                        format!("{at}.service"),
                        format!("no worker is named {:?}", b.service),
                    );
                    continue;
                };
                if let Some(e) = &b.entrypoint
                    && target.url.is_none()
                    && !target.entrypoints.contains(e)
                {
                    p.add(
                        format!("{at}.entrypoint"),
                        format!("worker {:?} exports no entrypoint named {e:?}", target.name),
                    );
                }
            }
        }
    }

    fn check_durable_objects(&self, p: &mut Problems<'_>, classes: &HashSet<String>) {
        for (i, w) in self.workers.iter().enumerate() {
            let mut names: HashSet<&str> = w.services.iter().map(|b| b.binding.as_str()).collect();
            for (k, b) in w.durable_objects.iter().enumerate() {
                let at = format!("worker[{i}].durable_objects[{k}]");
                if !names.insert(b.name.as_str()) || w.vars.contains_key(&b.name) {
                    p.add(
                        format!("{at}.name"),
                        format!("the name {:?} is bound twice", b.name),
                    );
                }
                if !classes.contains(&b.class_name) {
                    p.add(
                        format!("{at}.class_name"),
                        format!(
                            "no Durable Object class {:?} is registered with the host",
                            b.class_name
                        ),
                    );
                }
                let owner = match &b.script_name {
                    None => {
                        if w.url.is_some() {
                            p.add(
                                &at,
                                "a worker that runs elsewhere defines no Durable Objects here",
                            );
                        }
                        continue;
                    }
                    Some(owner) => owner,
                };
                let Some(target) = self.workers.iter().find(|t| &t.name == owner) else {
                    p.add(
                        format!("{at}.script_name"),
                        format!("no worker is named {owner:?}"),
                    );
                    continue;
                };
                if target.url.is_some() {
                    // Its host checks the class; this one cannot.
                } else if !target
                    .durable_objects
                    .iter()
                    .any(|d| d.script_name.is_none() && d.class_name == b.class_name)
                {
                    p.add(
                        format!("{at}.script_name"),
                        format!(
                            "worker {owner:?} defines no Durable Object class {:?} (it binds \
                             none without script_name)",
                            b.class_name
                        ),
                    );
                }
            }
        }
    }
}
