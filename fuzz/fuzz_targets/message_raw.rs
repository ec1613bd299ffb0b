//! Whole messages as they come, through the whole content pipeline
//! (see common/pipeline.rs): the input is a small folder, its messages
//! separated by a NUL line. Run with -max_len of 1 MiB or more and a
//! low -timeout, so quadratic work shows up as a slow unit.
#![no_main]

#[path = "common/pipeline.rs"]
mod pipeline;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let msgs: Vec<&[u8]> = data.split(|&b| b == 0).take(8).collect();
    pipeline::run(&msgs);
});
