//! The training tools' terminal output, cargo-style as the product's (`cerebro`'s `cli`):
//! shared by the two binaries through `#[path]`, and not a module of the library, because
//! library code never prints and this crate must not depend on the product.

use std::io::Write as _;

use anstyle::{AnsiColor, Style};

/// A cargo-style status line on stderr: a right-aligned bold verb, then the message.
pub fn status(verb: &str, message: &str) {
    let style = AnsiColor::Green.on_default() | anstyle::Effects::BOLD;
    let _ = writeln!(anstream::stderr(), "{style}{verb:>12}{style:#} {message}");
}

/// Prints an error chain: `error: …`, then one `Caused by:` line per cause.
pub fn print_error(error: &anyhow::Error) {
    let red = Style::new().fg_color(Some(AnsiColor::Red.into())).bold();
    let mut err = anstream::stderr();
    let _ = writeln!(err, "{red}error{red:#}: {error}");
    for cause in error.chain().skip(1) {
        let _ = writeln!(err, "  Caused by: {cause}");
    }
}
