//! Compiles the test protos with protox (pure Rust: no system protoc anywhere).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let descriptors = protox::compile(["proto/echo.proto"], ["proto"])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    println!("cargo::rerun-if-changed=proto/echo.proto");
    Ok(())
}
