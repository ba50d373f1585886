//! Literal text: decoding string escapes, telling program text from binary data, cutting
//! text for events.

use std::borrow::Cow;

/// Whether `source` is binary data rather than program text: control characters (other
/// than whitespace) in more than 1% of a sample of its bytes. Replacement characters do not
/// count: encoding tables write them on purpose.
pub(super) fn is_binary(source: &str) -> bool {
    let sample = clip(source, 64 * 1024);
    let control = sample
        .bytes()
        .filter(|&b| b < 0x09 || (0x0e..0x20).contains(&b))
        .count();
    control * 100 > sample.len().max(1)
}

/// Whether `b` can be part of an identifier.
pub(super) fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$'
}

pub(super) use crate::clip;

/// The text between a string literal's quotes.
pub(super) fn string_body(raw: &str) -> &str {
    let mut body = raw;
    if let Some(quote) = body.chars().next().filter(|c| matches!(c, '"' | '\'')) {
        body = &body[1..];
        if body.ends_with(quote) {
            body = &body[..body.len() - 1];
        }
    }
    body
}

/// Decodes a literal's escape sequences; also counts the escapes that spell printable ASCII
/// (`\x63`, `\u0063`, `\143`), which only obfuscation writes that way.
pub(super) fn decode(body: &str) -> (Cow<'_, str>, u32) {
    if !body.contains('\\') {
        return (Cow::Borrowed(body), 0);
    }
    let mut out = String::with_capacity(body.len());
    let mut printable = 0u32;
    let mut chars = body.chars().peekable();
    let mut spelled = |c: char, out: &mut String| {
        if (' '..='~').contains(&c) {
            printable += 1;
        }
        out.push(c);
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            break;
        };
        match e {
            'x' => {
                let value = hex_digits(&mut chars, 2);
                spelled(
                    value.and_then(char::from_u32).unwrap_or('\u{fffd}'),
                    &mut out,
                );
            }
            'u' => {
                let value = if chars.peek() == Some(&'{') {
                    chars.next();
                    let mut value = 0u32;
                    let mut ok = false;
                    for _ in 0..8 {
                        match chars.next() {
                            Some('}') => break,
                            Some(d) if d.is_ascii_hexdigit() => {
                                value = value * 16 + d.to_digit(16).unwrap_or(0);
                                ok = true;
                            }
                            _ => {
                                ok = false;
                                break;
                            }
                        }
                    }
                    ok.then_some(value)
                } else {
                    hex_digits(&mut chars, 4)
                };
                spelled(
                    value.and_then(char::from_u32).unwrap_or('\u{fffd}'),
                    &mut out,
                );
            }
            '0'..='7' => {
                let mut value = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|d| d.to_digit(8)) {
                        Some(d) if value * 8 + d <= 0xff => {
                            value = value * 8 + d;
                            chars.next();
                        }
                        _ => break,
                    }
                }
                spelled(char::from_u32(value).unwrap_or('\u{fffd}'), &mut out);
            }
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
            }
            '\n' | '\u{2028}' | '\u{2029}' => {}
            other => out.push(other),
        }
    }
    (Cow::Owned(out), printable)
}

fn hex_digits(chars: &mut std::iter::Peekable<std::str::Chars>, n: usize) -> Option<u32> {
    let mut value = 0u32;
    for _ in 0..n {
        let d = chars.peek().and_then(|c| c.to_digit(16))?;
        chars.next();
        value = value * 16 + d;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_counts_spelled_ascii() {
        assert_eq!(decode("plain"), (Cow::Borrowed("plain"), 0));
        assert_eq!(decode(r"\x63\u0068\u{69}\154d").0, "child");
        assert_eq!(decode(r"\x63\u0068\u{69}\154d").1, 4);
        assert_eq!(decode(r"a\nb\tc\'d\\").0, "a\nb\tc'd\\");
        assert_eq!(decode(r"a\nb").1, 0);
        assert_eq!(decode(r"\u4e2d").1, 0);
        assert_eq!(decode("line\\\ncontinued").0, "linecontinued");
    }

    #[test]
    fn malformed_escapes_do_not_panic() {
        for s in [
            r"\",
            r"\x",
            r"\x4",
            r"\u12",
            r"\u{",
            r"\u{110000}",
            r"\u{FFFFFFFFF}",
            r"\777",
            "é\\",
        ] {
            let _ = decode(s);
        }
        assert_eq!(decode(r"\ud83d").0, "\u{fffd}");
    }

    #[test]
    fn string_bodies() {
        assert_eq!(string_body("'abc'"), "abc");
        assert_eq!(string_body("\"a\""), "a");
        assert_eq!(string_body("'unterminated"), "unterminated");
        assert_eq!(string_body("''"), "");
    }

    #[test]
    fn binary_content() {
        assert!(is_binary("\u{0}\u{1}\u{2}abc"));
        assert!(!is_binary("const a = 1;\n\tfoo();\r\n"));
        assert!(!is_binary(""));
        assert!(!is_binary("table = '\u{fffd}\u{fffd}\u{fffd}';"));
    }
}
