//! One package from bytes to verdict: [`scan`] opens it and runs the stages, [`detect`] turns
//! the sequence into a verdict with reasons, [`report`] renders the result as JSON or text.

pub mod detect;
pub mod report;
pub mod scan;
