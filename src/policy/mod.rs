//! Policy: what to do with a flagged package (block, prompt, warn, off), the user's TOML
//! config, the allowlist, the prompt, and the verdict cache.
