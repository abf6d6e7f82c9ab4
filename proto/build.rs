//! Compiles `proto/**/*.proto` into prost types at build time.
//!
//! `protox` parses the .proto files in pure Rust, so a machine with only cargo builds
//! this crate: no `protoc` binary is needed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("proto");
    let files = [
        "wlnode/v1/record.proto",
        "wlnode/v1/roster.proto",
        "wlnode/v1/sync.proto",
        "wlnode/v1/audit.proto",
        "wlnode/v1/store.proto",
        "wlnode/v1/mail.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    let descriptors = protox::compile(files, [&root])?;
    prost_build::Config::new()
        // Bytes fields decode as zero-copy slices of the input buffer.
        .bytes(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
