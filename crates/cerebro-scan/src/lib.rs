//! One package from bytes to verdict: [`scan`] opens it and runs the stages, [`detect`] turns
//! the sequence into a verdict with reasons, [`diff`] compares a release with the one before
//! it, [`report`] renders the result as JSON or text.

pub mod detect;
pub mod diff;
pub mod report;
pub mod scan;
