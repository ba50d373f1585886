//! Cerebro: an install guard that judges the code of every package pip or npm is about to
//! install, offline, by the behaviour its code would show.
//!
//! This package is the product: the command line ([`cli`]) over the pipeline's crates, one a
//! stage (see `docs/ARCHITECTURE.md`): `cerebro-archive` reads a package without unpacking it
//! to disk, `cerebro-features` turns each source file into behaviour events and orders them
//! the way the code would run, `cerebro-model` scores the sequence, `cerebro-scan` ties the
//! stages together, and `cerebro-fetch` and `cerebro-guard` make the install guard.

pub mod cli;
