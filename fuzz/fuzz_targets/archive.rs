//! The archive reader on any bytes, under each name an installer gives it: an error is the
//! expected answer to most inputs; a panic, a hang or runaway memory is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 6] = [
    "p-1.0.tar.gz",
    "p-1.0.zip",
    "p-1.0-py3-none-any.whl",
    "p-1.0.tgz",
    "p-1.0.tar.bz2",
    "p-1.0.tar",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let name = NAMES[pick as usize % NAMES.len()];
    let limits = cerebro_archive::Limits::default();
    if let Ok(package) = cerebro_archive::read_bytes(std::path::Path::new(name), bytes, &limits) {
        // What the reader keeps goes on to the extractors.
        let _ = cerebro_features::extract(&package);
    }
});
