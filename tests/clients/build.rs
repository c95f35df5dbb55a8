//! The build script a user writes: connections.toml and protos, checked together.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    ephemos_build::configure()
        .connections("connections.toml")
        .compile_protos(&["proto/echo.proto"], &["proto"])?;
    Ok(())
}
