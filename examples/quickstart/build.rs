//! Checks connections.toml against the protos and generates the client, as a user's
//! build script would.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    ephemos_build::configure()
        .connections("connections.toml")
        .compile_protos(&["proto/greeter.proto"], &["proto"])?;
    Ok(())
}
