//! The build script a user writes: connections.toml and protos, checked together; and,
//! optionally, one generated client per target.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    ephemos_build::configure()
        .connections("connections.toml")
        .generate_clients(true)
        // The echo service of the test support crate: one proto for every test.
        .compile_protos(&["../support/proto/echo.proto"], &["../support/proto"])?;
    Ok(())
}
