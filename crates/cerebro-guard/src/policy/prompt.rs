//! The install prompt on the terminal: the one place in the policy stage that writes to it,
//! since it *is* the terminal UI.

use std::fmt::Write as _;
use std::io::Write as _;

use anstyle::{AnsiColor, Style};
use dialoguer::console::Term;
use dialoguer::theme::{ColorfulTheme, SimpleTheme, Theme};
use dialoguer::Select;

use super::{Choice, Flagged, Prompter};
use cerebro_scan::detect::Verdict;

const HEADER: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();
const LABEL: Style = AnsiColor::Cyan.on_default().bold();
const STRONG: Style = AnsiColor::Red.on_default().bold();
const MEDIUM: Style = AnsiColor::Yellow.on_default();
const GOOD: Style = AnsiColor::Green.on_default();

/// Asks on stderr with an arrow-key menu: abort (the default), install once, or always allow.
/// Esc or `q` aborts. Colour follows `--color`, `NO_COLOR` and whether stderr is a terminal.
#[derive(Debug, Default)]
pub struct TerminalPrompter {
    _private: (),
}

impl TerminalPrompter {
    pub fn new() -> TerminalPrompter {
        TerminalPrompter::default()
    }
}

impl Prompter for TerminalPrompter {
    fn choose(&mut self, flagged: &Flagged, index: usize, total: usize) -> std::io::Result<Choice> {
        let mut stderr = anstream::stderr();
        let colour = stderr.current_choice() != anstream::ColorChoice::Never;
        stderr.write_all(render(flagged, index, total).as_bytes())?;
        stderr.flush()?;

        let colourful = ColorfulTheme::default();
        let theme: &dyn Theme = if colour { &colourful } else { &SimpleTheme };
        let name = printable(&flagged.name);
        let items = [
            "Abort the install".to_owned(),
            "Install it this once".to_owned(),
            format!("Always allow {name}"),
        ];
        let term = Term::stderr();
        let answer = Select::with_theme(theme)
            .with_prompt(format!("Install {name} {}?", printable(&flagged.version)))
            .items(&items)
            .default(0)
            .interact_on_opt(&term)
            .map_err(std::io::Error::from);
        // An interrupted menu (Ctrl-C with a SIGINT handler installed) leaves the cursor hidden.
        let answer = answer.inspect_err(|_| {
            let _ = term.show_cursor();
        })?;
        Ok(match answer {
            Some(1) => Choice::Once,
            Some(2) => Choice::Always,
            _ => Choice::Abort,
        })
    }
}

/// What the user sees before the menu: which package, what it scored, and why.
///
/// ```text
/// (1/2) pypi evil-helper 1.0.3  evil-helper-1.0.3.tar.gz
///   verdict  malicious (score 0.99)
///     because runs a shell command at install time (P3) — setup.py:3
/// ```
///
/// Carries ANSI styles; the stream strips them when colour is off. Everything that came
/// from the package is made printable first, so a hostile name cannot drive the terminal.
fn render(flagged: &Flagged, index: usize, total: usize) -> String {
    let mut out = String::new();
    let counter = if total > 1 {
        format!("({}/{total}) ", index + 1)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "\n{counter}{HEADER}{} {} {}{HEADER:#}  {DIM}{}{DIM:#}",
        flagged.ecosystem,
        printable(&flagged.name),
        printable(&flagged.version),
        printable(&flagged.file),
    );
    if let Some(why) = &flagged.too_new {
        // Not judged yet: held back by the release-age cooldown, so no verdict to show.
        let _ = writeln!(out, "  {LABEL}too new{LABEL:#}  {}", printable(why));
        return out;
    }
    let style = match flagged.verdict {
        Verdict::Malicious => STRONG,
        Verdict::Suspicious => MEDIUM,
        Verdict::Benign => GOOD,
    };
    let _ = writeln!(
        out,
        "  {LABEL}verdict{LABEL:#}  {style}{}{style:#} (score {:.2})",
        flagged.verdict, flagged.score
    );
    for reason in &flagged.reasons {
        let _ = writeln!(out, "    because {}", printable(reason));
    }
    out
}

/// `text` with control and bidirectional characters shown escaped.
fn printable(text: &str) -> String {
    cerebro_archive::terminal_safe(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cerebro_archive::Ecosystem;

    fn flagged() -> Flagged {
        Flagged {
            ecosystem: Ecosystem::Pypi,
            name: "evil-helper".into(),
            version: "1.0.3".into(),
            file: "evil-helper-1.0.3.tar.gz".into(),
            sha256: "a".repeat(64),
            score: 0.987,
            verdict: Verdict::Malicious,
            reasons: vec![
                "runs a shell command at install time (P3) — setup.py:3".into(),
                "uses an exfiltration endpoint (D4) — evil/collect.py:9".into(),
            ],
            too_new: None,
        }
    }

    fn plain(text: &str) -> String {
        let mut out = Vec::new();
        let mut stream = anstream::StripStream::new(&mut out);
        stream.write_all(text.as_bytes()).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn header_shows_package_score_verdict_and_reasons() {
        let text = plain(&render(&flagged(), 0, 2));
        assert_eq!(
            text,
            "\n(1/2) pypi evil-helper 1.0.3  evil-helper-1.0.3.tar.gz\n\
             \x20 verdict  malicious (score 0.99)\n\
             \x20   because runs a shell command at install time (P3) — setup.py:3\n\
             \x20   because uses an exfiltration endpoint (D4) — evil/collect.py:9\n"
        );
        assert!(!plain(&render(&flagged(), 0, 1)).contains("(1/1)"));
    }

    #[test]
    fn too_new_releases_show_the_reason_not_a_verdict() {
        let mut f = flagged();
        f.too_new = Some("published 1 hour ago (min_release_age 2 days)".into());
        let text = plain(&render(&f, 0, 1));
        assert!(
            text.contains("too new  published 1 hour ago (min_release_age 2 days)"),
            "{text}"
        );
        assert!(!text.contains("verdict"), "{text}");
    }

    /// What a user sees before the menu, as a snapshot (`cargo insta review` after a
    /// deliberate change): a flagged package second of two, and a release held back as too new.
    #[test]
    fn snapshot_prompt_header() {
        let mut too_new = flagged();
        too_new.too_new = Some("released 3 hours ago, younger than min_release_age 2d".into());
        let shown = format!(
            "{}{}",
            plain(&render(&flagged(), 1, 2)),
            plain(&render(&too_new, 0, 1))
        );
        insta::assert_snapshot!(shown);
    }

    #[test]
    fn hostile_text_cannot_drive_the_terminal() {
        let mut f = flagged();
        f.name = "evil\x1b[2J".into();
        f.reasons = vec!["x\r\x1b]0;title\x07".into()];
        let text = render(&f, 0, 1);
        assert!(!text.contains("\x1b[2J") && !text.contains('\r') && !text.contains('\x07'));
        assert!(text.contains("evil\\u{1b}[2J"), "{text}");
        // A right-to-left override would show `evil-pkg` reversed.
        f.name = "safe\u{202e}gkp-live".into();
        let text = render(&f, 0, 1);
        assert!(!text.contains('\u{202e}'), "{text}");
        assert!(text.contains("safe\\u{202e}gkp-live"), "{text}");
    }
}
