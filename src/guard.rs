//! The guarded install, start to end: parse the manager's arguments, start the guard index,
//! let the real manager resolve through it, decide on what was flagged, then delegate.

/// The package managers Cerebro stands in front of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    Pip,
    Npm,
}
