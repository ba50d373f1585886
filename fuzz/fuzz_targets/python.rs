//! The Python extractor on any text, as an install-time file and as a module.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = cerebro_features::python::extract("setup.py", &text);
});
