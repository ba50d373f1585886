//! Path arithmetic on package-relative paths (`/`-separated, no leading `/`), shared by the
//! stages that resolve one file's reference to another. Pure string work: nothing here
//! touches the disk, and nothing can climb out of the package.

/// The folder part of `path` (`a/b/c.py` → `a/b`, `x.js` → ``).
pub fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// Joins `rel` onto folder `dir` and normalises `.` and `..`. Returns `None` when the result
/// would leave the package. A leading `/` in `rel` means the package root.
pub fn join(dir: &str, rel: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    let rel = match rel.strip_prefix('/') {
        Some(rooted) => rooted,
        None => {
            parts.extend(dir.split('/').filter(|p| !p.is_empty()));
            rel
        }
    };
    for part in rel.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// Candidate files for a JavaScript module path, in Node's order: the path itself, with
/// `.js`, `.cjs`, `.mjs`, then as a folder with `index.js`.
pub fn js_candidates(path: &str) -> [String; 5] {
    [
        path.to_owned(),
        format!("{path}.js"),
        format!("{path}.cjs"),
        format!("{path}.mjs"),
        if path.is_empty() {
            "index.js".to_owned()
        } else {
            format!("{path}/index.js")
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_normalises_and_stays_inside() {
        assert_eq!(join("lib", "./x.js").as_deref(), Some("lib/x.js"));
        assert_eq!(join("lib/a", "../b").as_deref(), Some("lib/b"));
        assert_eq!(join("lib", "/root.js").as_deref(), Some("root.js"));
        assert_eq!(join("", "x").as_deref(), Some("x"));
        assert_eq!(join("lib", "../../etc/passwd"), None);
    }

    #[test]
    fn parent_of_paths() {
        assert_eq!(parent("a/b/c.py"), "a/b");
        assert_eq!(parent("c.py"), "");
    }
}
