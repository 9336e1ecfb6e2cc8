//! Decode benchmarks (placeholder; filled in with the protocol decoders).
#![allow(missing_docs)]
fn main() {}
