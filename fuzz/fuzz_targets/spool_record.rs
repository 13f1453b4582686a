//! Arbitrary bytes as a spool segment tail: framing and decoding must never panic, and
//! anything that decodes must re-encode to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    spool::fuzzing::check_record_bytes(data);
});
