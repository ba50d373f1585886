//! Python string literals: the prefix of a literal and the value of its source text, so that
//! a URL written with `\x` escapes is judged like the plain URL.

/// What a literal's prefix (`rb'`, `f"""`, `u'`) says about its content.
#[derive(Debug, Clone, Copy, Default)]
pub struct Prefix {
    pub raw: bool,
    pub bytes: bool,
    pub format: bool,
}

impl Prefix {
    /// Reads the `string_start` token (prefix letters and opening quotes).
    pub fn of(start: &str) -> Prefix {
        let mut p = Prefix::default();
        for c in start.bytes() {
            match c {
                b'r' | b'R' => p.raw = true,
                b'b' | b'B' => p.bytes = true,
                b'f' | b'F' | b't' | b'T' => p.format = true,
                _ => {}
            }
        }
        p
    }
}

/// Appends the value of one piece of literal source text to `out` and returns how many
/// numeric escapes (`\x..`, `\u....`, `\U........`, octal, `\N{..}`) it held: many of them
/// in one literal is a way to hide text.
pub fn decode_into(out: &mut String, text: &str, prefix: Prefix) -> usize {
    let braces = prefix.format && text.contains(['{', '}']);
    if (prefix.raw || !text.contains('\\')) && !braces {
        out.push_str(text);
        return 0;
    }
    let mut escapes = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if prefix.format && (c == '{' || c == '}') {
            // `{{` / `}}` in an f-string stand for one brace.
            if chars.peek().map(|&(_, n)| n) == Some(c) {
                chars.next();
            }
            out.push(c);
            continue;
        }
        if c != '\\' || prefix.raw {
            out.push(c);
            continue;
        }
        let Some((_, e)) = chars.next() else {
            out.push('\\');
            break;
        };
        match e {
            '\n' => {}
            '\r' => {
                if chars.peek().map(|&(_, n)| n) == Some('\n') {
                    chars.next();
                }
            }
            '\\' | '\'' | '"' => out.push(e),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{b}'),
            '0'..='7' => {
                let mut v = e as u32 - '0' as u32;
                for _ in 0..2 {
                    match chars.peek() {
                        Some(&(_, d @ '0'..='7')) => {
                            v = v * 8 + (d as u32 - '0' as u32);
                            chars.next();
                        }
                        _ => break,
                    }
                }
                out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                escapes += 1;
            }
            'x' | 'u' | 'U' if !(prefix.bytes && e != 'x') => {
                let digits = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let start = i + 2;
                let hex = text
                    .get(start..start + digits)
                    .filter(|h| h.len() == digits && h.bytes().all(|b| b.is_ascii_hexdigit()));
                match hex.and_then(|h| u32::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                        for _ in 0..digits {
                            chars.next();
                        }
                        escapes += 1;
                    }
                    None => {
                        out.push('\\');
                        out.push(e);
                    }
                }
            }
            'N' if !prefix.bytes && chars.peek().map(|&(_, n)| n) == Some('{') => {
                // A named character: keep the name, it is readable as it is.
                out.push_str("\\N");
                escapes += 1;
            }
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    escapes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(text: &str, start: &str) -> (String, usize) {
        let mut out = String::new();
        let n = decode_into(&mut out, text, Prefix::of(start));
        (out, n)
    }

    #[test]
    fn escapes() {
        assert_eq!(dec(r"\x68\x74tp", "'"), ("http".to_owned(), 2));
        assert_eq!(dec(r"\150i\n", "'"), ("hi\n".to_owned(), 1));
        assert_eq!(dec(r"\u0041\U00000042", "'"), ("AB".to_owned(), 2));
        assert_eq!(dec(r"\u0041", "b'"), (r"\u0041".to_owned(), 0));
        assert_eq!(dec(r"\x41", "r'"), (r"\x41".to_owned(), 0));
        assert_eq!(dec(r"a{{b}}", "f'"), ("a{b}".to_owned(), 0));
        assert_eq!(dec(r"\xZZ\", "'"), (r"\xZZ\".to_owned(), 0));
        assert_eq!(dec("é\\x41", "'"), ("éA".to_owned(), 1));
    }
}
