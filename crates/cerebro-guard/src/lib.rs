//! The install guard: [`manager`] reads pip's and npm's command lines and finds the real
//! tools, [`index`] is the loopback guard index that judges every artifact before the real
//! installer gets it, [`policy`] decides what to do with a flagged package, [`guard`] runs
//! one guarded install, and [`delegate`] hands the command to the real tool.

pub mod delegate;
pub mod guard;
pub mod index;
pub mod manager;
pub mod policy;
