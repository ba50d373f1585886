//! Manager: what the user asked pip or npm to do (an install to guard, or anything else to
//! pass through), where their packages come from (the upstream registries they configured),
//! and where the real manager lives on `PATH`.
