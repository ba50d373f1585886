//! Delegate: runs the real package manager with the user's arguments, the terminal, stdin and
//! the exit code passed through. Signals from the terminal reach the child directly (it is in
//! the same process group); the caller decides what Cerebro itself does on Ctrl-C.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::manager::real::ACTIVE_ENV;

/// A command to hand over to: program, arguments, extra environment, folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    pub program: OsString,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub cwd: Option<PathBuf>,
    /// Whether `CEREBRO_ACTIVE` is set for it (the default): off for a run that goes on to
    /// start the user's own program (`uv run`, `uvx`), whose own installs are guarded anew.
    pub active: bool,
}

impl Delegation {
    /// `program` followed by `args` (the first element is the program).
    pub fn new(command: Vec<OsString>) -> Delegation {
        let mut it = command.into_iter();
        let program = it.next().unwrap_or_default();
        Delegation {
            program,
            args: it.collect(),
            env: Vec::new(),
            cwd: None,
            active: true,
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Delegation {
        self.args.push(arg.into());
        self
    }

    pub fn args(mut self, args: impl IntoIterator<Item = OsString>) -> Delegation {
        self.args.extend(args);
        self
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args);
        // A shim reached from inside (pip building a package runs pip again) passes through.
        if self.active {
            c.env(ACTIVE_ENV, "1");
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        if let Some(dir) = &self.cwd {
            c.current_dir(dir);
        }
        c
    }

    /// Runs it on the user's terminal and returns its exit code (128 + N when killed by
    /// signal N, as shells report it).
    pub fn run(&self) -> std::io::Result<i32> {
        let status = self
            .command()
            .stdin(Stdio::inherit())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .status()?;
        Ok(exit_code(status))
    }

    /// Runs it with no terminal: stdin closed, output captured (for the resolution runs,
    /// whose output is the guard's business, not the user's).
    pub fn run_captured(&self) -> std::io::Result<Captured> {
        let out = self.command().stdin(Stdio::null()).output()?;
        Ok(Captured {
            code: exit_code(out.status),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    /// The command line, for messages.
    pub fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What a captured run left.
#[derive(Debug, Clone)]
pub struct Captured {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Captured {
    /// The last non-empty lines of stderr, for an error message.
    pub fn stderr_tail(&self, lines: usize) -> String {
        let text = String::from_utf8_lossy(&self.stderr);
        let kept: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        kept[kept.len().saturating_sub(lines)..].join("\n")
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    if let Some(code) = status.code() {
        return code;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(sig) = status.signal() {
            return 128 + sig;
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_pass_through() {
        let d = Delegation::new(vec!["sh".into(), "-c".into(), "exit 7".into()]);
        assert_eq!(d.run_captured().unwrap().code, 7);
        let d = Delegation::new(vec!["sh".into(), "-c".into(), "kill -TERM $$".into()]);
        assert_eq!(d.run_captured().unwrap().code, 128 + 15);
    }

    #[test]
    fn the_child_knows_the_guard_is_active() {
        let d = Delegation::new(vec![
            "sh".into(),
            "-c".into(),
            "printf %s \"$CEREBRO_ACTIVE\"".into(),
        ]);
        assert_eq!(d.run_captured().unwrap().stdout, b"1");
    }
}
