//! The launch parsers of a processes worker on arbitrary bytes: up to the
//! first newline the launch variable's text (`MAIN_PID:FD`), after it the
//! launch information main sends on the boot channel.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parallelizer_core::backend::processes::fuzz;

fuzz_target!(|data: &[u8]| {
    let (text, bytes) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    if let Ok(text) = std::str::from_utf8(text) {
        fuzz::launch(text, bytes);
    }
});
