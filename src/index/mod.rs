//! The guard index: an HTTP server on loopback, started for one command, that fronts the
//! user's registries. The real manager resolves and installs through it, and it serves an
//! artifact only once it was fetched, verified, scanned and allowed.
