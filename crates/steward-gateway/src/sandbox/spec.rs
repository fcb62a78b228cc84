//! `sandbox:` as written next to a server (steward.yaml, a registry entry's `config`) or built
//! from `steward proxy --sandbox` flags.
//!
//! ```yaml
//! sandbox:
//!   profile: node                      # node | npx | python | uvx | minimal (default)
//!   filesystem: { read: ["/usr", "${HOME}/.npm"], write: ["${PROJECT}/scratch"] }
//!   write: [./scratch]                 # shorthand for filesystem.write (and `read:`)
//!   network: none                      # none | loopback | [host:port, ...]
//!   limits: { memory: 512MiB, cpu_seconds: 300, processes: 64, open_files: 256 }
//!   best_effort: false
//! ```
//! `sandbox: node` is `sandbox: {profile: node}`.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// A server's sandbox, as declared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SandboxSpec {
    /// What the server's runtime needs to start (see [`Profile`]); `minimal` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    /// Paths the server may read (and execute), on top of the profile's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub read: Vec<String>,
    /// Paths the server may read and write (not execute).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub write: Vec<String>,
    pub network: Network,
    #[serde(skip_serializing_if = "Limits::is_empty")]
    pub limits: Limits,
    /// Start with what the kernel offers when a facility is missing (and say what was skipped)
    /// instead of refusing to start.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub best_effort: bool,
}

impl SandboxSpec {
    /// A sandbox with a profile and nothing else (no network, no limits).
    pub fn with_profile(profile: Profile) -> SandboxSpec {
        SandboxSpec {
            profile: Some(profile),
            ..SandboxSpec::default()
        }
    }

    /// The profile in force (`minimal` when none is named).
    pub fn profile(&self) -> Profile {
        self.profile.unwrap_or(Profile::Minimal)
    }
}

/// What a launcher needs to start. Every profile grants the program itself (and the interpreter
/// of a script), the install prefixes they live in, shared libraries, and the few `/etc` and
/// `/dev` files every runtime opens; see `docs/sandbox.md` for the exact list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// The program, its libraries and the listed paths; no temp dir.
    Minimal,
    /// `node SCRIPT`: Node's prefix, the script's package tree (its `node_modules`), a private temp dir.
    Node,
    /// `npx PKG`: `node`, the npm cache (`~/.npm`, writable) and the project's `node_modules`.
    Npx,
    /// `python SCRIPT | -m MODULE`: the interpreter's prefix (and a venv's base), the script's directory, a private temp dir.
    Python,
    /// `uvx PKG`: every Python on PATH, uv's cache (`~/.cache/uv`) and its tools and interpreters (`~/.local/share/uv`), writable.
    Uvx,
}

impl Profile {
    pub const ALL: [Profile; 5] = [
        Profile::Minimal,
        Profile::Node,
        Profile::Npx,
        Profile::Python,
        Profile::Uvx,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Minimal => "minimal",
            Profile::Node => "node",
            Profile::Npx => "npx",
            Profile::Python => "python",
            Profile::Uvx => "uvx",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|p| p.as_str() == s.trim())
            .ok_or_else(|| {
                format!(
                    "unknown sandbox profile '{s}' (expected one of: {})",
                    Profile::ALL.map(Profile::as_str).join(", ")
                )
            })
    }
}

/// What the server may reach over the network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Network {
    /// Nothing: no socket but an already-connected pair (`socketpair`).
    #[default]
    None,
    /// Its own loopback interface in a network namespace of its own: it can talk to itself, not
    /// to the host's 127.0.0.1 or anywhere else.
    Loopback,
    /// TCP connections to these ports (the kernel filters by port; hosts are recorded, not enforced).
    Allow(Vec<NetRule>),
}

impl Serialize for Network {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Network::None => s.serialize_str("none"),
            Network::Loopback => s.serialize_str("loopback"),
            Network::Allow(rules) => rules.serialize(s),
        }
    }
}

/// One `host:port` of a network allow-list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NetRule {
    /// A host name, an IP address, or `*`.
    pub host: String,
    pub port: u16,
}

impl fmt::Display for NetRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl Serialize for NetRule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl FromStr for NetRule {
    type Err = String;
    /// `host:port`, `[v6]:port` or `*:port`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let bad = || format!("network entry '{s}' is not HOST:PORT (e.g. api.github.com:443, [::1]:8080, *:443)");
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, p) = rest.split_once("]:").ok_or_else(bad)?;
            (h, p)
        } else {
            s.rsplit_once(':').ok_or_else(bad)?
        };
        if host.is_empty() || host.contains(['/', ' ', '[', ']']) || (host.contains(':') && !s.starts_with('[')) {
            return Err(bad());
        }
        let port: u16 = port.parse().map_err(|_| bad())?;
        if port == 0 {
            return Err(format!("network entry '{s}': port 0 is not a port one connects to"));
        }
        Ok(NetRule {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

/// Resource limits. Absent means "not limited by the sandbox".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Bytes of memory: the whole server (cgroup) where Steward may create one, and each process
    /// (`RLIMIT_DATA`) always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Size>,
    /// CPU seconds per process (`RLIMIT_CPU`): SIGXCPU, then SIGKILL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<u64>,
    /// Tasks (processes and threads) of the whole server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<u64>,
    /// Open file descriptors per process (`RLIMIT_NOFILE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_files: Option<u64>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }
}

/// A byte count written as `512MiB`, `1GiB`, `64M`, `1000000` or `10MB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Size(pub u64);

impl FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("cannot read size '{s}' (write e.g. 512MiB, 2GiB)"))?;
        let mult: u64 = match unit.trim() {
            "" | "B" => 1,
            "K" | "KiB" | "k" => 1 << 10,
            "M" | "MiB" => 1 << 20,
            "G" | "GiB" => 1 << 30,
            "T" | "TiB" => 1 << 40,
            "KB" | "kB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            "TB" => 1_000_000_000_000,
            other => {
                return Err(format!(
                    "unknown size unit '{other}' in '{s}' (use B, KiB, MiB, GiB, TiB)"
                ));
            }
        };
        let bytes = n.checked_mul(mult).ok_or_else(|| format!("size '{s}' is too large"))?;
        if bytes == 0 {
            return Err(format!("size '{s}' is zero: a server cannot start without memory"));
        }
        Ok(Size(bytes))
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as 512MiB or a number of bytes")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                if v == 0 {
                    return Err(E::custom("memory size is zero"));
                }
                Ok(Size(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom("a size cannot be negative"))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Network {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Network;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("none, loopback, or a list of HOST:PORT")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Network, E> {
                match v.trim() {
                    "none" => Ok(Network::None),
                    "loopback" => Ok(Network::Loopback),
                    other => Err(E::custom(format!(
                        "network '{other}' is not none, loopback or a list of HOST:PORT"
                    ))),
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<Network, E> {
                Ok(Network::None)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Network, A::Error> {
                let mut rules = Vec::new();
                while let Some(entry) = seq.next_element::<String>()? {
                    rules.push(entry.parse().map_err(de::Error::custom)?);
                }
                if rules.is_empty() {
                    return Ok(Network::None);
                }
                Ok(Network::Allow(rules))
            }
        }
        d.deserialize_any(V)
    }
}

/// The map form, field by field (kept apart so `sandbox: node` can share the same errors).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecDoc {
    #[serde(default)]
    profile: Option<Profile>,
    #[serde(default)]
    filesystem: Option<FsDoc>,
    #[serde(default)]
    read: Vec<String>,
    #[serde(default)]
    write: Vec<String>,
    #[serde(default)]
    network: Option<Network>,
    #[serde(default)]
    limits: Option<Limits>,
    #[serde(default)]
    best_effort: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FsDoc {
    #[serde(default)]
    read: Vec<String>,
    #[serde(default)]
    write: Vec<String>,
}

impl<'de> Deserialize<'de> for SandboxSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SandboxSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a profile name (node, npx, python, uvx, minimal) or {profile, filesystem, network, limits, best_effort}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SandboxSpec, E> {
                v.parse().map(SandboxSpec::with_profile).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SandboxSpec, A::Error> {
                let doc = SpecDoc::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let (mut read, mut write) = doc.filesystem.map(|f| (f.read, f.write)).unwrap_or_default();
                read.extend(doc.read);
                write.extend(doc.write);
                Ok(SandboxSpec {
                    profile: doc.profile,
                    read,
                    write,
                    network: doc.network.unwrap_or_default(),
                    limits: doc.limits.unwrap_or_default(),
                    best_effort: doc.best_effort,
                })
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Result<SandboxSpec, String> {
        serde_saphyr::from_str::<SandboxSpec>(s).map_err(|e| e.to_string())
    }

    #[test]
    fn the_documented_shapes_parse() {
        let s = yaml(
            r#"
filesystem: { read: ["/usr", "/lib", "${HOME}/.npm"], write: ["${PROJECT}/scratch"] }
network: none
limits: { memory: 512MiB, cpu_seconds: 300, processes: 64, open_files: 256 }
"#,
        )
        .unwrap();
        assert_eq!(s.profile(), Profile::Minimal);
        assert_eq!(s.read, ["/usr", "/lib", "${HOME}/.npm"]);
        assert_eq!(s.write, ["${PROJECT}/scratch"]);
        assert_eq!(s.network, Network::None);
        assert_eq!(s.limits.memory, Some(Size(512 << 20)));
        assert_eq!(s.limits.processes, Some(64));

        let s = yaml("{profile: node, write: [./scratch]}").unwrap();
        assert_eq!(s.profile, Some(Profile::Node));
        assert_eq!(s.write, ["./scratch"]);
        assert!(!s.best_effort);

        assert_eq!(yaml("uvx").unwrap(), SandboxSpec::with_profile(Profile::Uvx));
        let s = yaml("{network: [api.github.com:443, '[::1]:8080', '*:80'], best_effort: true}").unwrap();
        assert_eq!(
            s.network,
            Network::Allow(vec![
                NetRule {
                    host: "api.github.com".into(),
                    port: 443
                },
                NetRule {
                    host: "::1".into(),
                    port: 8080
                },
                NetRule {
                    host: "*".into(),
                    port: 80
                },
            ])
        );
        assert!(s.best_effort);
        assert_eq!(yaml("{network: loopback}").unwrap().network, Network::Loopback);
    }

    #[test]
    fn mistakes_are_refused_with_the_reason() {
        assert!(yaml("{profile: nodejs}").unwrap_err().contains("unknown variant"));
        assert!(yaml("deno").unwrap_err().contains("unknown sandbox profile 'deno'"));
        assert!(
            yaml("{network: everywhere}")
                .unwrap_err()
                .contains("not none, loopback")
        );
        assert!(yaml("{network: [github.com]}").unwrap_err().contains("HOST:PORT"));
        assert!(yaml("{network: ['h:0']}").unwrap_err().contains("port 0"));
        assert!(yaml("{network: ['h:70000']}").unwrap_err().contains("HOST:PORT"));
        assert!(
            yaml("{limits: {memory: 12XB}}")
                .unwrap_err()
                .contains("unknown size unit")
        );
        assert!(yaml("{limits: {memory: 0}}").unwrap_err().contains("zero"));
        assert!(yaml("{limits: {procs: 5}}").unwrap_err().contains("unknown field"));
        assert!(yaml("{filesytem: {}}").unwrap_err().contains("unknown field"));
    }

    #[test]
    fn sizes() {
        assert_eq!("1GiB".parse::<Size>().unwrap(), Size(1 << 30));
        assert_eq!("64M".parse::<Size>().unwrap(), Size(64 << 20));
        assert_eq!("10MB".parse::<Size>().unwrap(), Size(10_000_000));
        assert_eq!("4096".parse::<Size>().unwrap(), Size(4096));
        assert!("99999999999999TiB".parse::<Size>().is_err());
        assert_eq!(
            yaml("{limits: {memory: 1048576}}").unwrap().limits.memory,
            Some(Size(1 << 20))
        );
    }

    #[test]
    fn round_trips_through_json() {
        let s = yaml("{profile: npx, read: [/opt/x], network: ['a.example:443'], limits: {processes: 8}}").unwrap();
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["network"], serde_json::json!(["a.example:443"]));
        let back: SandboxSpec = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }
}
