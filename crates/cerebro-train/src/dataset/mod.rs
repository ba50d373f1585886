//! Dataset: the reproducible training data of the detector, built by the `cerebro-dataset`
//! binary.
//!
//! The data has two halves. The **malicious** half is the shared corpus (`pypi-malicious/`,
//! `npm-malicious/`), listed by its own `manifest.csv` files. The **benign** half is the most
//! downloaded packages of each registry, pinned in a manifest of ours (`data/benign-*.csv`:
//! name, version, URL and sha256 of one artifact each) so that anyone can fetch exactly the
//! same bytes again. Both halves go through the same extractor as `cerebro scan`.
//!
//! The stages, one module each:
//! - [`registry`] asks PyPI or npm for a package's newest version and picks the artifact
//!   (PyPI: the sdist, else a pure-Python wheel; npm: the tarball);
//! - [`download`] fetches metadata and artifacts with bounded concurrency, retries and hash
//!   checks, into the [`cache`], a content-addressed folder written atomically (both built
//!   on [`cerebro_fetch`], with the dataset's own cache folder and skip reasons);
//! - [`manifest`] reads the ranked name lists and reads and writes the manifest CSV files,
//!   and [`collect`] runs the `manifest` and `fetch` commands over them;
//! - [`sequences`] scans every package, malicious and benign, into one JSON line each.
//!
//! Nothing here prints: progress reaches the caller through callbacks, and the binary
//! decides what to show.

pub mod cache;
pub mod collect;
pub mod download;
pub mod manifest;
pub mod needles;
pub mod registry;
pub mod sequences;

pub use cerebro_archive::Ecosystem;

/// The `source` label of an ecosystem's benign packages in the sequences file.
pub fn benign_source(ecosystem: Ecosystem) -> &'static str {
    match ecosystem {
        Ecosystem::Pypi => "top-pypi",
        Ecosystem::Npm => "top-npm",
    }
}

// The hash and size helpers live with the downloads they serve; the dataset's callers keep
// their old paths.
pub use cerebro_fetch::{hex, human_bytes, is_sha256_hex, sha256_hex};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_sha256() {
        assert_eq!(hex(&[0, 0xab, 0xff]), "00abff");
        let h = sha256_hex(b"");
        assert_eq!(
            h,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(is_sha256_hex(&h));
        assert!(!is_sha256_hex("../etc/passwd"));
        assert!(!is_sha256_hex(&h.to_uppercase()));
    }

    #[test]
    fn sizes_for_people() {
        assert_eq!(human_bytes(12), "12 bytes");
        assert_eq!(human_bytes(25_000_000), "25.0 MB");
    }
}
