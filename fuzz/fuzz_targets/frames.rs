//! The processes backend's frame reader on arbitrary bytes: the first byte
//! says how many bytes each read delivers (1..=256), the rest is the stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parallelizer_core::backend::processes::fuzz;

fuzz_target!(|data: &[u8]| {
    let Some((&step, stream)) = data.split_first() else {
        return;
    };
    fuzz::frames(stream, usize::from(step) + 1);
});
