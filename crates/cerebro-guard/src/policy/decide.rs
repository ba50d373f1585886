//! The decision on one install's flagged packages: proceed or not, and which were allowed,
//! warned about or blocked, under a [`Mode`].

use super::Mode;
use cerebro_archive::Ecosystem;
use cerebro_scan::detect::Verdict;

/// A package the detector flagged, as the policy shows it to the user.
#[derive(Debug, Clone, PartialEq)]
pub struct Flagged {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
    /// The artifact's file name (`evil-1.0.tar.gz`).
    pub file: String,
    /// The artifact's sha256, lowercase hex.
    pub sha256: String,
    pub score: f32,
    pub verdict: Verdict,
    /// Already-rendered lines, strongest first:
    /// `runs a shell command at install time (P3) — setup.py:3`.
    pub reasons: Vec<String>,
    /// Set when the package is stopped for being too new, not for what it does:
    /// `published 3 hours ago (min_release_age 2 days)` (score and verdict then mean nothing).
    pub too_new: Option<String>,
}

/// The user's answer for one flagged package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Stop the whole install.
    Abort,
    /// Install this package this time only.
    Once,
    /// Install it, and add it (every version) to the allowlist.
    Always,
}

/// Asks the user about one flagged package. The terminal one is
/// [`TerminalPrompter`](super::TerminalPrompter); tests script their own.
pub trait Prompter {
    /// Asks about `flagged`, the `index`-th (from 0) of `total` flagged packages.
    fn choose(&mut self, flagged: &Flagged, index: usize, total: usize) -> std::io::Result<Choice>;
}

/// What to do with one install. The lists hold indexes into the flagged slice given to
/// [`decide`]; each index is in at most one list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// Hand the install to the real package manager.
    pub proceed: bool,
    /// Allowed this time.
    pub once: Vec<usize>,
    /// Allowed, and to be added to the allowlist by the caller.
    pub always: Vec<usize>,
    /// Installed despite the flag ([`Mode::Warn`]): the caller says so.
    pub warned: Vec<usize>,
    /// Not allowed: the install stops because of these.
    pub blocked: Vec<usize>,
}

/// Decides what to do with the flagged packages of one install (the allowlisted ones already
/// taken out):
///
/// - nothing flagged, or [`Mode::Off`]: proceed;
/// - [`Mode::Warn`]: proceed, every package warned about;
/// - [`Mode::Block`], or [`Mode::Prompt`] with nobody to ask (`interactive` false): stop,
///   every package blocked;
/// - [`Mode::Prompt`]: ask about each in turn; the first abort stops asking and the install,
///   and every package not allowed by then is blocked.
///
/// An error from the prompter (the terminal went away) is returned as is: the caller treats
/// it as a stop.
pub fn decide(
    mode: Mode,
    flagged: &[Flagged],
    interactive: bool,
    prompter: &mut dyn Prompter,
) -> std::io::Result<Decision> {
    let all = || (0..flagged.len()).collect::<Vec<_>>();
    let mut decision = Decision::default();
    if flagged.is_empty() {
        decision.proceed = true;
        return Ok(decision);
    }
    match mode {
        Mode::Off => decision.proceed = true,
        Mode::Warn => {
            decision.proceed = true;
            decision.warned = all();
        }
        Mode::Block => decision.blocked = all(),
        Mode::Prompt if !interactive => decision.blocked = all(),
        Mode::Prompt => {
            decision.proceed = true;
            for (i, package) in flagged.iter().enumerate() {
                match prompter.choose(package, i, flagged.len())? {
                    Choice::Once => decision.once.push(i),
                    Choice::Always => decision.always.push(i),
                    Choice::Abort => {
                        decision.proceed = false;
                        break;
                    }
                }
            }
            if !decision.proceed {
                decision.blocked = (0..flagged.len())
                    .filter(|i| !decision.once.contains(i) && !decision.always.contains(i))
                    .collect();
            }
        }
    }
    Ok(decision)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers from a script, recording what it was asked.
    struct Scripted {
        answers: Vec<Choice>,
        asked: Vec<(String, usize, usize)>,
    }

    impl Scripted {
        fn new(answers: &[Choice]) -> Scripted {
            Scripted {
                answers: answers.to_vec(),
                asked: Vec::new(),
            }
        }
    }

    impl Prompter for Scripted {
        fn choose(
            &mut self,
            flagged: &Flagged,
            index: usize,
            total: usize,
        ) -> std::io::Result<Choice> {
            self.asked.push((flagged.name.clone(), index, total));
            if self.answers.is_empty() {
                return Err(std::io::Error::other("asked more than scripted"));
            }
            Ok(self.answers.remove(0))
        }
    }

    fn flagged(n: usize) -> Vec<Flagged> {
        (0..n)
            .map(|i| Flagged {
                ecosystem: Ecosystem::Pypi,
                name: format!("pkg{i}"),
                version: "1.0".into(),
                file: format!("pkg{i}-1.0.tar.gz"),
                sha256: "0".repeat(64),
                score: 0.9,
                verdict: Verdict::Malicious,
                reasons: vec!["runs a shell command at install time (P3) — setup.py:3".into()],
                too_new: None,
            })
            .collect()
    }

    #[test]
    fn nothing_flagged_proceeds_in_every_mode() {
        for mode in Mode::ALL {
            let mut p = Scripted::new(&[]);
            let d = decide(mode, &[], true, &mut p).unwrap();
            assert_eq!(
                d,
                Decision {
                    proceed: true,
                    ..Decision::default()
                }
            );
            assert!(p.asked.is_empty());
        }
    }

    #[test]
    fn off_warn_block_never_ask() {
        let f = flagged(2);
        let mut p = Scripted::new(&[]);
        let d = decide(Mode::Off, &f, true, &mut p).unwrap();
        assert!(d.proceed && d.warned.is_empty() && d.blocked.is_empty());
        let d = decide(Mode::Warn, &f, true, &mut p).unwrap();
        assert!(d.proceed && d.blocked.is_empty());
        assert_eq!(d.warned, [0, 1]);
        let d = decide(Mode::Block, &f, true, &mut p).unwrap();
        assert!(!d.proceed && d.warned.is_empty());
        assert_eq!(d.blocked, [0, 1]);
        assert!(p.asked.is_empty());
    }

    #[test]
    fn prompt_without_a_terminal_blocks() {
        let mut p = Scripted::new(&[Choice::Once]);
        let d = decide(Mode::Prompt, &flagged(2), false, &mut p).unwrap();
        assert!(!d.proceed);
        assert_eq!(d.blocked, [0, 1]);
        assert!(p.asked.is_empty());
    }

    #[test]
    fn prompt_allowing_everything_proceeds() {
        let mut p = Scripted::new(&[Choice::Once, Choice::Always, Choice::Once]);
        let d = decide(Mode::Prompt, &flagged(3), true, &mut p).unwrap();
        assert_eq!(
            d,
            Decision {
                proceed: true,
                once: vec![0, 2],
                always: vec![1],
                ..Decision::default()
            }
        );
        assert_eq!(
            p.asked,
            [
                ("pkg0".to_owned(), 0, 3),
                ("pkg1".to_owned(), 1, 3),
                ("pkg2".to_owned(), 2, 3)
            ]
        );
    }

    #[test]
    fn prompt_abort_stops_asking_and_blocks_the_rest() {
        let mut p = Scripted::new(&[Choice::Always, Choice::Abort, Choice::Once]);
        let d = decide(Mode::Prompt, &flagged(3), true, &mut p).unwrap();
        assert_eq!(
            d,
            Decision {
                proceed: false,
                always: vec![0],
                blocked: vec![1, 2],
                ..Decision::default()
            }
        );
        assert_eq!(p.asked.len(), 2);
    }

    #[test]
    fn prompter_errors_are_returned() {
        let mut p = Scripted::new(&[]);
        assert!(decide(Mode::Prompt, &flagged(1), true, &mut p).is_err());
    }
}
