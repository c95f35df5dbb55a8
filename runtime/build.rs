//! Compiles the SPIFFE Workload API proto (vendored from spiffe/spiffe) for the
//! in-process agent that serves the `dev` and `files` identities. protox is pure Rust:
//! no system protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let descriptors = protox::compile(["proto/workload.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(false)
        .compile_fds(descriptors)?;
    println!("cargo::rerun-if-changed=proto/workload.proto");
    Ok(())
}
