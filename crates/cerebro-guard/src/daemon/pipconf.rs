//! The rewrite `cerebro setup` makes to the user's `pip.conf`: every index setting removed
//! (in every section, so that no `[install] extra-index-url` lets pip fetch past the guard),
//! and `index-url` in `[global]` naming the guard daemon. Everything else is kept byte for
//! byte; the original file is kept apart and put back by `cerebro setup --undo`.

/// The keys that name an index, as pip normalises keys (lowercase, `_` → `-`).
const INDEX_KEYS: [&str; 3] = ["index-url", "extra-index-url", "pypi-url"];

/// The comment written above the guard's line, so that a reader of `pip.conf` knows where it
/// came from and how to undo it.
pub const MARK: &str = "# written by `cerebro setup`: every pip reads the Cerebro guard daemon \
                        (`cerebro setup --undo` puts the previous file back)";

/// An index setting taken out of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub section: String,
    /// Normalised (`index-url`, `extra-index-url`, `pypi-url`).
    pub key: String,
    /// The value, continuation lines joined by `\n` (as pip reads it).
    pub value: String,
}

/// The rewritten file, and what was taken out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    pub text: String,
    pub removed: Vec<Removed>,
}

/// `text` (a `pip.conf`, possibly empty) with every index setting removed and `index-url =
/// guard` first in `[global]` (a `[global]` section added at the end when there is none),
/// with `timeout = <timeout>` beside it unless `[global]` sets one already: pip's own 15 s
/// would give up on a large sdist while the daemon judges it.
pub fn point_at(text: &str, guard: &str, timeout: u64) -> Rewritten {
    let has_timeout = {
        let mut section = String::new();
        text.lines().any(|line| {
            let t = line.trim();
            if let Some(name) = t.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
                section = name.to_owned();
                return false;
            }
            !line.starts_with([' ', '\t'])
                && (section == "global" || section == "DEFAULT")
                && t.split_once(['=', ':']).is_some_and(|(k, _)| {
                    k.trim().to_ascii_lowercase().replace('_', "-") == "timeout"
                })
        })
    };
    let mut out = String::with_capacity(text.len() + 200);
    let mut removed: Vec<Removed> = Vec::new();
    let mut section: Option<String> = None;
    let mut dropping = false;
    let mut placed = false;
    let mut line_of_guard = format!("{MARK}\nindex-url = {guard}\n");
    if !has_timeout {
        line_of_guard.push_str(&format!("timeout = {timeout}\n"));
    }
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let trimmed = body.trim();
        let indented = body.starts_with([' ', '\t']);
        if dropping {
            if indented && !trimmed.is_empty() {
                if let Some(last) = removed.last_mut() {
                    last.value.push('\n');
                    last.value.push_str(trimmed);
                }
                continue;
            }
            dropping = false;
        }
        if trimmed == MARK {
            continue;
        }
        if !indented {
            if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
                section = Some(name.to_owned());
                out.push_str(line);
                if name == "global" && !placed {
                    if !line.ends_with('\n') {
                        out.push('\n');
                    }
                    out.push_str(&line_of_guard);
                    placed = true;
                }
                continue;
            }
            if let (Some(s), false, Some(at)) = (
                &section,
                trimmed.starts_with(['#', ';']),
                trimmed.find(['=', ':']),
            ) {
                let key = trimmed[..at].trim().to_ascii_lowercase().replace('_', "-");
                if INDEX_KEYS.contains(&key.as_str()) {
                    removed.push(Removed {
                        section: s.clone(),
                        key,
                        value: trimmed[at + 1..].trim().to_owned(),
                    });
                    dropping = true;
                    continue;
                }
            }
        }
        out.push_str(line);
    }
    if !placed {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str("[global]\n");
        out.push_str(&line_of_guard);
    }
    Rewritten { text: out, removed }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUARD: &str = "http://127.0.0.1:3141/simple/";

    #[test]
    fn an_absent_file_gets_a_global_section() {
        let r = point_at("", GUARD, 300);
        assert_eq!(
            r.text,
            format!("[global]\n{MARK}\nindex-url = {GUARD}\ntimeout = 300\n")
        );
        assert!(r.removed.is_empty());
    }

    #[test]
    fn every_index_setting_goes_and_the_rest_stays_byte_for_byte() {
        let text = "# my pip\r\n[global]\r\ntimeout = 60\r\nindex_url = https://corp/simple\r\n\
                    extra-index-url =\n    https://a/simple\n    https://b/simple\n\
                    \n[install]\nEXTRA-INDEX-URL: https://c/simple\nuser = false\n; index-url = x\n";
        let r = point_at(text, GUARD, 300);
        assert_eq!(
            r.text,
            format!(
                "# my pip\r\n[global]\r\n{MARK}\nindex-url = {GUARD}\ntimeout = 60\r\n\
                 \n[install]\nuser = false\n; index-url = x\n"
            )
        );
        let got: Vec<(&str, &str, &str)> = r
            .removed
            .iter()
            .map(|r| (r.section.as_str(), r.key.as_str(), r.value.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("global", "index-url", "https://corp/simple"),
                (
                    "global",
                    "extra-index-url",
                    "\nhttps://a/simple\nhttps://b/simple"
                ),
                ("install", "extra-index-url", "https://c/simple"),
            ]
        );
    }

    #[test]
    fn a_file_without_global_gets_one_at_the_end() {
        let r = point_at("[install]\nindex-url = https://x/simple", GUARD, 300);
        assert_eq!(
            r.text,
            format!("[install]\n\n[global]\n{MARK}\nindex-url = {GUARD}\ntimeout = 300\n")
        );
        assert_eq!(r.removed.len(), 1);
    }

    #[test]
    fn rewriting_twice_changes_nothing_more() {
        let once = point_at("[global]\nindex-url = https://x/simple\n", GUARD, 300);
        let twice = point_at(&once.text, GUARD, 300);
        assert_eq!(once.text, twice.text);
    }
}
