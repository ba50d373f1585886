//! Delegate: runs the real package manager with the user's arguments, terminal, signals and
//! exit code passed through.
