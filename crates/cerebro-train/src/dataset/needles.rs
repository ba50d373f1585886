//! Needles: benign packages with one piece of malware sewn in, the shape of a compromised
//! release (a payload added to `setup.py`, to the package's `__init__.py` or npm `main`, an
//! install hook added to `package.json`, a new module beside the library's own).
//!
//! Both sides come from one part of the split (`train::split`, computed from the sequences
//! file the same way training computes it): **test** needles for the needle test, so a needle
//! never carries code the model was trained or tuned on; **train** and **valid** needles to
//! teach and tune the model on the same shape (the split puts each needle in its host's part,
//! so test malware never reaches training). Hosts are spread over sizes, from one file to thousands.
//! Everything happens in memory: the malware is read as bytes, merged as bytes, and scanned;
//! nothing is unpacked to disk or run.

use std::collections::HashMap;
#[cfg(test)]
use std::collections::HashSet;
use std::path::Path;

use serde_json::Value;

use super::sequences::{catch, read_package, record_of, Entry, Label, Record};
use super::Ecosystem as Registry;
use crate::train::data::parse_line;
use crate::train::split::{split, Part, SplitOptions};
use cerebro_archive::{Package, SourceFile};
use cerebro_features::Language;
use cerebro_scan::scan::{self, ScanOptions};

/// The part the split puts each package of the sequences file at `path` in, by sha256, with
/// the number of source files its scan read.
pub fn parts(path: &Path, opts: &SplitOptions) -> Result<HashMap<String, (Part, usize)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut examples = Vec::new();
    let mut hashes = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed =
            parse_line(line, false).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
        if let Some(example) = parsed {
            let v: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
            hashes.push((
                v["sha256"].as_str().unwrap_or_default().to_owned(),
                example.files_parsed.unwrap_or(0),
            ));
            examples.push(example);
        }
    }
    let parts = split(&examples, opts).parts;
    Ok(hashes
        .into_iter()
        .zip(parts)
        .map(|((h, n), p)| (h, (p, n)))
        .collect())
}

/// The packages of one part of [`parts`]: sha256 and source files read.
pub fn part_members(
    path: &Path,
    opts: &SplitOptions,
    part: Part,
) -> Result<HashMap<String, usize>, String> {
    Ok(parts(path, opts)?
        .into_iter()
        .filter(|(_, (p, _))| *p == part)
        .map(|(h, (_, n))| (h, n))
        .collect())
}

/// At most `per_sequence` donors for each distinct behaviour sequence (`sequence_of`: sha256
/// to the donor's sequence as text), in their order: the corpus repeats a few payloads
/// thousands of times, and a needle set for training wants payloads more than copies.
pub fn thin_donors(
    donors: Vec<Entry>,
    sequence_of: &HashMap<String, String>,
    per_sequence: usize,
) -> Vec<Entry> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::new();
    for d in donors {
        let key = sequence_of.get(&d.sha256).map_or("", String::as_str);
        let n = seen.entry(key).or_insert(0);
        if key.is_empty() || *n < per_sequence {
            *n += 1;
            out.push(d);
        }
    }
    out
}

/// sha256 to the sequence (tokens joined by spaces) of every line of the sequences file.
pub fn sequences_by_hash(path: &Path) -> Result<HashMap<String, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let seq = v["sequence"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        if let Some(h) = v["sha256"].as_str() {
            out.insert(h.to_owned(), seq);
        }
    }
    Ok(out)
}

/// Pairs every test-part malware package (`donors`) with a test-part benign host of its
/// ecosystem, spreading the donors over the hosts sorted by size (`sizes`: files per host,
/// aligned with `hosts`), so that small and huge hosts both get needles.
pub fn pair<'a>(
    donors: &'a [Entry],
    hosts: &'a [Entry],
    sizes: &[usize],
) -> Vec<(&'a Entry, &'a Entry)> {
    let mut out = Vec::new();
    for eco in [Registry::Pypi, Registry::Npm] {
        let mut h: Vec<usize> = (0..hosts.len())
            .filter(|&i| hosts[i].ecosystem == eco)
            .collect();
        if h.is_empty() {
            continue;
        }
        h.sort_by_key(|&i| (sizes[i], i));
        let d: Vec<&Entry> = donors.iter().filter(|e| e.ecosystem == eco).collect();
        // A stride coprime with the host count walks every size before repeating.
        let n = h.len();
        let stride = (1..=n)
            .rev()
            .find(|s| gcd(*s, n) == 1 && *s <= n / 2 + 1)
            .unwrap_or(1);
        for (k, donor) in d.into_iter().enumerate() {
            out.push((donor, &hosts[h[(k * stride) % n]]));
        }
    }
    out
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Sews `donor`'s code into `host`, as a compromised release would carry it:
/// - Python: the donor's `setup.py` is appended to the host's (to its shallowest
///   `__init__.py` when the host is a wheel, which runs no `setup.py`); the donor's
///   shallowest `__init__.py` is appended to the host's; every other `.py`/`.pth` file is
///   added at its own path (appended where the host has one), so its imports still resolve.
/// - npm: the donor's install hooks are added to the host's `package.json` (before the host's
///   own, joined with `&&`); the donor's `main` file (or, without a manifest, its first
///   JavaScript file) is appended to the host's `main`; the other JavaScript files are added
///   at their own paths.
pub fn sew(host: &Package, donor: &Package) -> Package {
    let mut files: Vec<SourceFile> = host.files.clone();
    let find = |files: &Vec<SourceFile>, path: &str| files.iter().position(|f| f.path == path);
    let append = |files: &mut Vec<SourceFile>, path: &str, bytes: &[u8]| match files
        .iter()
        .position(|f| f.path == path)
    {
        Some(i) => {
            let f = &mut files[i];
            if !f.bytes.ends_with(b"\n") {
                f.bytes.push(b'\n');
            }
            f.bytes.extend_from_slice(bytes);
        }
        None => files.push(SourceFile {
            path: path.to_owned(),
            bytes: bytes.to_vec(),
        }),
    };
    let shallowest_init = |files: &[SourceFile]| {
        files
            .iter()
            .filter(|f| f.path == "__init__.py" || f.path.ends_with("/__init__.py"))
            .min_by_key(|f| (f.path.matches('/').count(), f.path.clone()))
            .map(|f| f.path.clone())
    };
    match host.ecosystem {
        cerebro_archive::Ecosystem::Pypi => {
            let host_init = shallowest_init(&host.files);
            let donor_init = shallowest_init(&donor.files);
            let host_has_setup = find(&files, "setup.py").is_some();
            for f in &donor.files {
                if Language::of(&f.path) != Some(Language::Python) {
                    continue;
                }
                if f.path == "setup.py" {
                    match (&host_has_setup, &host_init) {
                        (false, Some(init)) => append(&mut files, init, &f.bytes),
                        _ => append(&mut files, "setup.py", &f.bytes),
                    }
                } else if Some(&f.path) == donor_init.as_ref() && host_init.is_some() {
                    append(
                        &mut files,
                        host_init.as_deref().unwrap_or_default(),
                        &f.bytes,
                    );
                } else {
                    append(&mut files, &f.path, &f.bytes);
                }
            }
        }
        cerebro_archive::Ecosystem::Npm => {
            let manifest = |p: &Package| {
                p.file("package.json")
                    .and_then(|f| serde_json::from_slice::<Value>(&f.bytes).ok())
            };
            let donor_json = manifest(donor);
            let mut host_json = manifest(host).unwrap_or_else(|| serde_json::json!({}));
            let main_of = |json: &Value, p: &Package| -> Option<String> {
                let main = json
                    .get("main")
                    .and_then(Value::as_str)
                    .unwrap_or("index.js")
                    .trim_start_matches("./")
                    .to_owned();
                [
                    main.clone(),
                    format!("{main}.js"),
                    format!("{main}/index.js"),
                ]
                .into_iter()
                .find(|c| p.file(c).is_some())
            };
            let host_main = main_of(&host_json, host).unwrap_or_else(|| "index.js".to_owned());
            let donor_main = match &donor_json {
                Some(json) => main_of(json, donor),
                None => donor
                    .files
                    .iter()
                    .find(|f| Language::of(&f.path) == Some(Language::JavaScript))
                    .map(|f| f.path.clone()),
            };
            if let Some(scripts) = donor_json.as_ref().and_then(|j| j.get("scripts")) {
                for hook in ["preinstall", "install", "postinstall"] {
                    let Some(cmd) = scripts.get(hook).and_then(Value::as_str) else {
                        continue;
                    };
                    let host_scripts = host_json
                        .as_object_mut()
                        .map(|o| o.entry("scripts").or_insert_with(|| serde_json::json!({})));
                    if let Some(Value::Object(s)) = host_scripts {
                        let joined = match s.get(hook).and_then(Value::as_str) {
                            Some(own) => format!("{cmd} && {own}"),
                            None => cmd.to_owned(),
                        };
                        s.insert(hook.to_owned(), Value::String(joined));
                    }
                }
            }
            for f in &donor.files {
                if Language::of(&f.path) != Some(Language::JavaScript) {
                    continue;
                }
                if Some(&f.path) == donor_main.as_ref() {
                    append(&mut files, &host_main, &f.bytes);
                } else {
                    append(&mut files, &f.path, &f.bytes);
                }
            }
            let text = serde_json::to_vec_pretty(&host_json).unwrap_or_default();
            match find(&files, "package.json") {
                Some(i) => files[i].bytes = text,
                None => files.push(SourceFile {
                    path: "package.json".to_owned(),
                    bytes: text,
                }),
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files.dedup_by(|a, b| a.path == b.path);
    Package {
        origin: host.origin.clone(),
        ecosystem: host.ecosystem,
        name: host.name.clone(),
        version: host.version.clone(),
        kind: host.kind,
        files,
        anomalies: host.anomalies.clone(),
    }
}

/// The sequences-file line of the needle made of `donor` in `host`: labelled malicious, with
/// source `needle`, the host's name and version (its group in the split), and the donor
/// named in `file` (`HOST_FILE+DONOR_FILE`).
pub fn needle_record(host: &Entry, donor: &Entry, options: &ScanOptions) -> Record {
    let entry = Entry {
        label: Label::Malicious,
        ecosystem: host.ecosystem,
        source: crate::train::split::NEEDLE_SOURCE.to_owned(),
        name: host.name.clone(),
        version: host.version.clone(),
        file: format!("{}+{}", host.file, donor.file),
        sha256: donor.sha256.clone(),
        added: donor.added.clone(),
        rank: host.rank,
        location: host.location.clone(),
    };
    let scanned = read_package(host, options).and_then(|h| {
        let d = read_package(donor, options)?;
        catch(&entry.file, || scan::scan_package(&sew(&h, &d), options))
    });
    record_of(&entry, scanned, options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cerebro_archive::{ArchiveKind, Ecosystem};

    fn pkg(eco: Ecosystem, files: &[(&str, &str)]) -> Package {
        let mut files = files.to_vec();
        files.sort();
        Package {
            origin: "x".into(),
            ecosystem: eco,
            name: "host".into(),
            version: "1".into(),
            kind: ArchiveKind::Tar,
            files: files
                .iter()
                .map(|(p, t)| SourceFile {
                    path: (*p).into(),
                    bytes: t.as_bytes().to_vec(),
                })
                .collect(),
            anomalies: Vec::new(),
        }
    }

    fn text<'a>(p: &'a Package, path: &str) -> std::borrow::Cow<'a, str> {
        p.file(path)
            .unwrap_or_else(|| panic!("{path} missing"))
            .text()
    }

    #[test]
    fn python_payloads_go_where_a_compromised_release_puts_them() {
        let host = pkg(
            Ecosystem::Pypi,
            &[
                ("setup.py", "setup()"),
                ("lib/__init__.py", "X = 1"),
                ("lib/a.py", ""),
            ],
        );
        let donor = pkg(
            Ecosystem::Pypi,
            &[
                ("setup.py", "import os"),
                ("evil/__init__.py", "import socket"),
                ("evil/x.py", "y"),
            ],
        );
        let got = sew(&host, &donor);
        assert_eq!(text(&got, "setup.py"), "setup()\nimport os");
        assert_eq!(text(&got, "lib/__init__.py"), "X = 1\nimport socket");
        assert_eq!(text(&got, "evil/x.py"), "y");
        assert!(got.file("evil/__init__.py").is_none());
        // A wheel host runs no setup.py: the payload goes to import time.
        let wheel = pkg(Ecosystem::Pypi, &[("lib/__init__.py", "X = 1")]);
        let got = sew(&wheel, &pkg(Ecosystem::Pypi, &[("setup.py", "import os")]));
        assert_eq!(text(&got, "lib/__init__.py"), "X = 1\nimport os");
        assert!(got.file("setup.py").is_none());
    }

    #[test]
    fn npm_hooks_join_the_manifest_and_main_gets_the_payload() {
        let host = pkg(
            Ecosystem::Npm,
            &[
                (
                    "package.json",
                    r#"{"name":"host","main":"lib/index.js","scripts":{"postinstall":"node build.js"}}"#,
                ),
                ("lib/index.js", "module.exports = 1"),
            ],
        );
        let donor = pkg(
            Ecosystem::Npm,
            &[
                (
                    "package.json",
                    r#"{"main":"main.js","scripts":{"postinstall":"node steal.js","preinstall":"curl x"}}"#,
                ),
                ("main.js", "require('http')"),
                ("steal.js", "process.env"),
            ],
        );
        let got = sew(&host, &donor);
        let json: Value = serde_json::from_slice(&got.file("package.json").unwrap().bytes).unwrap();
        assert_eq!(
            json["scripts"]["postinstall"],
            "node steal.js && node build.js"
        );
        assert_eq!(json["scripts"]["preinstall"], "curl x");
        assert_eq!(json["name"], "host");
        assert_eq!(
            text(&got, "lib/index.js"),
            "module.exports = 1\nrequire('http')"
        );
        assert_eq!(text(&got, "steal.js"), "process.env");
        // A donor that is only a script goes into main.
        let bare = pkg(Ecosystem::Npm, &[("payload.js", "eval(x)")]);
        let got = sew(&host, &bare);
        assert_eq!(text(&got, "lib/index.js"), "module.exports = 1\neval(x)");
    }

    #[test]
    fn pairs_spread_donors_over_host_sizes() {
        let e = |eco: Registry, n: &str| Entry {
            label: Label::Benign,
            ecosystem: eco,
            source: String::new(),
            name: Some(n.into()),
            version: None,
            file: n.into(),
            sha256: String::new(),
            added: None,
            rank: None,
            location: n.into(),
        };
        let hosts: Vec<Entry> = (0..10)
            .map(|i| e(Registry::Pypi, &format!("h{i}")))
            .collect();
        let sizes: Vec<usize> = (0..10).map(|i| 100 - i).collect();
        let donors: Vec<Entry> = (0..10)
            .map(|i| e(Registry::Pypi, &format!("d{i}")))
            .collect();
        let pairs = pair(&donors, &hosts, &sizes);
        assert_eq!(pairs.len(), 10);
        let used: HashSet<&str> = pairs.iter().map(|(_, h)| h.file.as_str()).collect();
        assert_eq!(used.len(), 10, "every host used once before any twice");
    }
}
