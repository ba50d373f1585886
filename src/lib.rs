//! Cerebro: an install guard that judges the code of every package pip or npm is about to
//! install, offline, by the behaviour its code would show.
//!
//! The pipeline, one module a stage (see `DESIGN.md` in the docs):
//! [`archive`] reads a package without unpacking it to disk, [`features`] turns each source
//! file into unified behaviour events, [`sequence`] orders them the way the code would run, and
//! [`scan`] ties the stages together for one package or a folder of them.

pub mod archive;
pub mod cli;
pub mod dataset;
pub mod delegate;
pub mod detect;
pub mod features;
pub mod fetch;
pub mod guard;
pub mod index;
pub mod manager;
pub mod model;
pub mod paths;
pub mod policy;
pub mod report;
pub mod scan;
pub mod sequence;
pub mod train;
