//! The PyPI "simple" repository API (PEP 503 HTML and PEP 691 JSON): reading an upstream
//! project page into its file links, and writing the guard's own page, whose links all point
//! back at the guard.

use reqwest::Url;
use serde_json::Value;

use super::percent_decode;

/// The `Accept` header the guard sends upstream: JSON where the index speaks it, HTML else.
pub const ACCEPT: &str =
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1";

/// One distribution file listed on a project page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLink {
    pub filename: String,
    /// Absolute URL, without its fragment.
    pub url: Url,
    /// Lowercase hex sha256, when the index published one.
    pub sha256: Option<String>,
    pub requires_python: Option<String>,
    /// `Some("")` when yanked without a reason.
    pub yanked: Option<String>,
    /// The core metadata file (`<url>.metadata`, PEP 658/714), when the index has one:
    /// `Some(None)` without a hash, `Some(Some(sha256))` with one.
    pub metadata: Option<Option<String>>,
    /// When the file was uploaded (PEP 700 `upload-time`, JSON pages only), as written.
    pub upload_time: Option<String>,
    /// The file's size in bytes (PEP 700 `size`, JSON pages only).
    pub size: Option<u64>,
}

/// Parses an upstream project page (HTML or JSON, by content type or by sniffing).
pub fn parse_page(
    body: &[u8],
    content_type: Option<&str>,
    page: &Url,
) -> Result<Vec<FileLink>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the page is not UTF-8".to_owned())?;
    let json =
        content_type.is_some_and(|t| t.contains("json")) || text.trim_start().starts_with('{');
    if json {
        parse_json(text, page)
    } else {
        Ok(parse_html(text, page))
    }
}

fn parse_json(text: &str, page: &Url) -> Result<Vec<FileLink>, String> {
    let doc: Value =
        serde_json::from_str(text).map_err(|e| format!("bad JSON project page: {e}"))?;
    let files = doc
        .get("files")
        .and_then(Value::as_array)
        .ok_or("the JSON project page has no `files`")?;
    let mut out = Vec::new();
    for f in files {
        let (Some(filename), Some(href)) = (
            f.get("filename").and_then(Value::as_str),
            f.get("url").and_then(Value::as_str),
        ) else {
            continue;
        };
        let Ok(mut url) = page.join(href) else {
            continue;
        };
        let fragment_hash = url.fragment().and_then(fragment_sha256);
        url.set_fragment(None);
        let sha256 = f
            .pointer("/hashes/sha256")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .or(fragment_hash);
        let yanked = match f.get("yanked") {
            Some(Value::Bool(true)) => Some(String::new()),
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        let metadata = ["core-metadata", "dist-info-metadata"]
            .iter()
            .find_map(|k| f.get(*k))
            .and_then(|m| match m {
                Value::Bool(true) => Some(None),
                Value::Object(o) => Some(
                    o.get("sha256")
                        .and_then(Value::as_str)
                        .map(str::to_ascii_lowercase),
                ),
                _ => None,
            });
        out.push(FileLink {
            filename: filename.to_owned(),
            url,
            sha256,
            requires_python: f
                .get("requires-python")
                .and_then(Value::as_str)
                .map(str::to_owned),
            yanked,
            metadata,
            upload_time: f
                .get("upload-time")
                .and_then(Value::as_str)
                .map(str::to_owned),
            size: f.get("size").and_then(Value::as_u64),
        });
    }
    Ok(out)
}

fn fragment_sha256(fragment: &str) -> Option<String> {
    let hex = fragment.strip_prefix("sha256=")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

/// A metadata attribute value: `true`, or `sha256=<hex>`.
fn metadata_attr(value: &str) -> Option<Option<String>> {
    if value.eq_ignore_ascii_case("true") {
        return Some(None);
    }
    fragment_sha256(value).map(Some)
}

fn parse_html(text: &str, page: &Url) -> Vec<FileLink> {
    let mut base = page.clone();
    let mut out = Vec::new();
    let lower = text.to_ascii_lowercase();
    let mut at = 0;
    while let Some(start) = lower[at..].find('<').map(|i| at + i) {
        let Some(end) = lower[start..].find('>').map(|i| start + i) else {
            break;
        };
        let tag = &text[start + 1..end];
        at = end + 1;
        let name_end = tag
            .find(|c: char| c.is_ascii_whitespace())
            .unwrap_or(tag.len());
        let tag_name = tag[..name_end].to_ascii_lowercase();
        if tag_name != "a" && tag_name != "base" {
            continue;
        }
        let attrs = attributes(&tag[name_end..]);
        let get = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let Some(href) = get("href") else {
            continue;
        };
        if tag_name == "base" {
            if let Ok(b) = page.join(href) {
                base = b;
            }
            continue;
        }
        let Ok(mut url) = base.join(href) else {
            continue;
        };
        let fragment_hash = url.fragment().and_then(fragment_sha256);
        url.set_fragment(None);
        // The link text is the file name; fall back to the URL's last segment.
        let close = lower[at..].find("</a").map_or(at, |i| at + i);
        let text_name = unescape(text[at..close].trim());
        let filename = if text_name.is_empty() {
            url.path_segments()
                .and_then(|mut s| s.next_back())
                .map(percent_decode)
                .unwrap_or_default()
        } else {
            text_name
        };
        if filename.is_empty() {
            continue;
        }
        out.push(FileLink {
            filename,
            url,
            sha256: fragment_hash,
            requires_python: get("data-requires-python").map(str::to_owned),
            yanked: get("data-yanked").map(str::to_owned),
            metadata: get("data-core-metadata")
                .or_else(|| get("data-dist-info-metadata"))
                .and_then(metadata_attr),
            upload_time: None,
            size: None,
        });
    }
    out
}

/// The attributes of a tag, names lowercased, values unescaped.
fn attributes(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let name_start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'/' {
            i += 1;
        }
        if name_start == i {
            break;
        }
        let name = s[name_start..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            let value = if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let quote = b[i];
                let start = i + 1;
                let end = b[start..]
                    .iter()
                    .position(|&c| c == quote)
                    .map_or(b.len(), |p| start + p);
                i = (end + 1).min(b.len());
                &s[start..end]
            } else {
                let start = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                &s[start..i]
            };
            out.push((name, unescape(value)));
        } else {
            out.push((name, String::new()));
        }
    }
    out
}

/// HTML character references that occur in index pages.
fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let ch = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A link of the guard's own page: where the guard serves the file.
#[derive(Debug, Clone)]
pub struct LocalLink<'a> {
    pub link: &'a FileLink,
    /// Path on the guard, e.g. `/files/3/requests-2.32.3.tar.gz`.
    pub href: String,
}

/// Writes the guard's PEP 503 page for `project`.
/// A project page in the form the client asked for (`accept`: PEP 691 JSON when it names
/// it, else HTML), with its content type.
pub fn render_for(
    accept: Option<&str>,
    project: &str,
    links: &[LocalLink<'_>],
) -> (String, &'static str) {
    if accept.is_some_and(|a| a.contains("application/vnd.pypi.simple.v1+json")) {
        (
            render_json(project, links),
            "application/vnd.pypi.simple.v1+json",
        )
    } else {
        (render_page(project, links), "text/html; charset=utf-8")
    }
}

pub fn render_page(project: &str, links: &[LocalLink<'_>]) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.1\">",
    );
    out.push_str(&format!(
        "<title>Links for {0}</title></head><body><h1>Links for {0}</h1>\n",
        escape(project)
    ));
    for l in links {
        let mut href = l.href.clone();
        if let Some(h) = &l.link.sha256 {
            href.push_str("#sha256=");
            href.push_str(h);
        }
        out.push_str(&format!("<a href=\"{}\"", escape(&href)));
        if let Some(rp) = &l.link.requires_python {
            out.push_str(&format!(" data-requires-python=\"{}\"", escape(rp)));
        }
        if let Some(y) = &l.link.yanked {
            out.push_str(&format!(" data-yanked=\"{}\"", escape(y)));
        }
        if let Some(m) = &l.link.metadata {
            let v = m
                .as_ref()
                .map_or("true".to_owned(), |h| format!("sha256={h}"));
            out.push_str(&format!(
                " data-dist-info-metadata=\"{v}\" data-core-metadata=\"{v}\""
            ));
        }
        out.push_str(&format!(">{}</a><br/>\n", escape(&l.link.filename)));
    }
    out.push_str("</body></html>\n");
    out
}

/// The guard's own page as PEP 691 JSON (API version 1.1), for a client that asks for it:
/// unlike the HTML page it carries PEP 700's `size` and `upload-time`, which uv records in
/// `uv.lock` (a guarded lockfile must say what a bare one would).
pub fn render_json(project: &str, links: &[LocalLink<'_>]) -> String {
    let files: Vec<Value> = links
        .iter()
        .map(|l| {
            let mut f = serde_json::Map::new();
            f.insert("filename".into(), l.link.filename.clone().into());
            f.insert("url".into(), l.href.clone().into());
            let mut hashes = serde_json::Map::new();
            if let Some(h) = &l.link.sha256 {
                hashes.insert("sha256".into(), h.clone().into());
            }
            f.insert("hashes".into(), Value::Object(hashes));
            if let Some(rp) = &l.link.requires_python {
                f.insert("requires-python".into(), rp.clone().into());
            }
            if let Some(y) = &l.link.yanked {
                let v = if y.is_empty() {
                    Value::Bool(true)
                } else {
                    y.clone().into()
                };
                f.insert("yanked".into(), v);
            }
            if let Some(m) = &l.link.metadata {
                let v = match m {
                    Some(h) => serde_json::json!({ "sha256": h }),
                    None => Value::Bool(true),
                };
                f.insert("core-metadata".into(), v.clone());
                f.insert("dist-info-metadata".into(), v);
            }
            if let Some(size) = l.link.size {
                f.insert("size".into(), size.into());
            }
            if let Some(t) = &l.link.upload_time {
                f.insert("upload-time".into(), t.clone().into());
            }
            Value::Object(f)
        })
        .collect();
    serde_json::json!({
        "meta": { "api-version": "1.1" },
        "name": project,
        "files": files,
    })
    .to_string()
}

/// PEP 503 name normalisation: lowercase, runs of `-`, `_`, `.` become one `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Url {
        Url::parse("https://example.org/simple/foo-bar/").unwrap()
    }

    #[test]
    fn html_links_with_relative_urls_hashes_and_attributes() {
        let html = r#"<!DOCTYPE html><html><body>
<a href="../../packages/ab/foo_bar-1.0.tar.gz#sha256=ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789" data-requires-python="&gt;=3.8">foo_bar-1.0.tar.gz</a><br/>
<A HREF='https://files.example.org/foo_bar-1.1-py3-none-any.whl' data-yanked="broken" data-dist-info-metadata="sha256=1111111111111111111111111111111111111111111111111111111111111111">foo_bar-1.1-py3-none-any.whl</A>
<a href="/x/foo_bar-1.2.zip">
</body></html>"#;
        let links = parse_page(html.as_bytes(), Some("text/html"), &page()).unwrap();
        assert_eq!(links.len(), 3);
        assert_eq!(links[0].filename, "foo_bar-1.0.tar.gz");
        assert_eq!(
            links[0].url.as_str(),
            "https://example.org/packages/ab/foo_bar-1.0.tar.gz"
        );
        assert_eq!(
            links[0].sha256.as_deref(),
            Some("abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789")
        );
        assert_eq!(links[0].requires_python.as_deref(), Some(">=3.8"));
        assert_eq!(links[1].yanked.as_deref(), Some("broken"));
        assert_eq!(links[1].metadata, Some(Some("1".repeat(64))));
        assert_eq!(links[2].filename, "foo_bar-1.2.zip");
        assert_eq!(links[2].sha256, None);
    }

    #[test]
    fn json_pages() {
        let json = r#"{"meta":{"api-version":"1.1"},"name":"foo-bar","files":[
 {"filename":"foo_bar-1.0.tar.gz","url":"../../p/foo_bar-1.0.tar.gz","hashes":{"sha256":"AA00000000000000000000000000000000000000000000000000000000000000"},"requires-python":">=3.7","yanked":false,"upload-time":"2024-01-01T00:00:00.000Z"},
 {"filename":"foo_bar-1.1-py3-none-any.whl","url":"https://f.example.org/foo_bar-1.1-py3-none-any.whl","hashes":{},"yanked":"bad","core-metadata":{"sha256":"bb00000000000000000000000000000000000000000000000000000000000000"}}
]}"#;
        let links = parse_page(
            json.as_bytes(),
            Some("application/vnd.pypi.simple.v1+json"),
            &page(),
        )
        .unwrap();
        assert_eq!(links.len(), 2);
        assert_eq!(
            links[0].url.as_str(),
            "https://example.org/p/foo_bar-1.0.tar.gz"
        );
        assert_eq!(
            links[0].sha256.as_deref(),
            Some(&*format!("aa{}", "0".repeat(62)))
        );
        assert_eq!(links[0].yanked, None);
        assert_eq!(
            links[0].upload_time.as_deref(),
            Some("2024-01-01T00:00:00.000Z")
        );
        assert_eq!(links[1].upload_time, None);
        assert_eq!(links[1].yanked.as_deref(), Some("bad"));
        assert_eq!(
            links[1].metadata,
            Some(Some(format!("bb{}", "0".repeat(62))))
        );
    }

    #[test]
    fn rendered_pages_read_back_the_same() {
        let links = parse_page(
            br#"<a href="f/x-1.0.tar.gz#sha256=cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc" data-requires-python="&lt;4,&gt;=3" data-yanked="">x-1.0.tar.gz</a>"#,
            None,
            &page(),
        )
        .unwrap();
        let local = [LocalLink {
            link: &links[0],
            href: "/files/0/x-1.0.tar.gz".into(),
        }];
        let html = render_page("x", &local);
        let guard = Url::parse("http://127.0.0.1:9/simple/x/").unwrap();
        let back = parse_page(html.as_bytes(), None, &guard).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(
            back[0].url.as_str(),
            "http://127.0.0.1:9/files/0/x-1.0.tar.gz"
        );
        assert_eq!(back[0].sha256, links[0].sha256);
        assert_eq!(back[0].requires_python.as_deref(), Some("<4,>=3"));
        assert_eq!(back[0].yanked.as_deref(), Some(""));
    }

    #[test]
    fn names_are_normalised() {
        assert_eq!(normalize("Foo__Bar.baz"), "foo-bar-baz");
        assert_eq!(normalize("requests"), "requests");
    }

    #[test]
    fn hostile_markup_does_not_panic() {
        for s in [
            "<a",
            "<a href=",
            "<a href='x",
            "&#xFFFFFFFF;<a href=x>&bogus;</a>",
            "<<<>>>",
        ] {
            let _ = parse_page(s.as_bytes(), None, &page());
        }
        assert_eq!(unescape("a&amp;b&lt;&#65;&#x42;&zz;"), "a&b<AB&zz;");
    }
}
