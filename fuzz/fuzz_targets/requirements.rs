//! A requirement file as `pip install -r FILE` hands it to Cerebro.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cerebro_guard::fuzzing::requirement_file(data);
});
