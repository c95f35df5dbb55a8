//! The build script a user writes: connections.toml and protos, checked together.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    ephemos_build::configure()
        .connections("connections.toml")
        // The echo service of the test support crate: one proto for every test.
        .compile_protos(&["../support/proto/echo.proto"], &["../support/proto"])?;
    Ok(())
}
