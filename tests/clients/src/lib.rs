//! Clients declared the way users declare them: `#[ephemos::client]` on a newtype over
//! the tonic client that ephemos-build generated, and clients ephemos-build generated
//! itself. The tests of this crate check what the attribute bakes and that the clients
//! call real servers.

/// The echo service's generated code (named through `ephemos::__private`).
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod pb {
    ephemos::include_proto!("echo.v1");
}

/// A client of target `echo` of `connections.toml`, keeping its channel.
#[ephemos::client(target = "echo", config = "connections.toml")]
#[derive(Clone, Debug)]
pub struct Echo(
    pb::echo_client::EchoClient<ephemos::Channel>,
    ephemos::Channel,
);

/// The same target, with arguments overriding the file.
#[ephemos::client(
    target = "echo",
    config = "connections.toml",
    connect_timeout = "1s",
    pool_size = 2
)]
pub struct TunedEcho(pb::echo_client::EchoClient<ephemos::Channel>);

/// A client with no file entry at all.
#[ephemos::ephemos_client(
    address = "127.0.0.1:50051",
    preset = "development",
    identity = "plaintext",
    service = "echo.v1.Echo"
)]
pub struct InlineEcho(pb::echo_client::EchoClient<ephemos::Channel>);

/// A client of target `small`: messages of at most 1 KiB.
#[ephemos::client(target = "small", config = "connections.toml")]
pub struct SmallEcho(pb::echo_client::EchoClient<ephemos::Channel>);

/// The brief's form: no `target`, so the target is `order_history`.
#[ephemos::ephemos_client(connect_timeout = "4s")]
#[derive(Clone)]
pub struct OrderHistory<T = ephemos::Channel>(pb::echo_client::EchoClient<T>);

/// Target `echo` with the attribute's code: two interceptors, run in this order, and
/// identity propagation.
#[ephemos::client(
    target = "echo",
    config = "connections.toml",
    interceptor = interceptors::tenant,
    interceptor = interceptors::trace,
    propagate_identity = true
)]
pub struct TracedEcho(pb::echo_client::EchoClient<ephemos::Channel>);

/// The interceptors [`TracedEcho`] declares.
pub mod interceptors {
    use tonic::metadata::MetadataMap;

    /// Adds `tenant: blue`.
    pub fn tenant(_path: &str, metadata: &mut MetadataMap) -> Result<(), tonic::Status> {
        metadata.insert(
            "tenant",
            tonic::metadata::MetadataValue::from_static("blue"),
        );
        Ok(())
    }

    /// Adds `trace: <the tenant it saw>/<path>`, to show it runs after [`tenant`].
    pub fn trace(path: &str, metadata: &mut MetadataMap) -> Result<(), tonic::Status> {
        let tenant = metadata
            .get("tenant")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_owned();
        let value = format!("{tenant}{path}")
            .parse()
            .map_err(|_| tonic::Status::internal("unprintable trace value"))?;
        metadata.insert("trace", value);
        Ok(())
    }
}

/// The clients ephemos-build generated, one per target (`Echo`, `Small`, `OrderHistory`).
pub mod generated {
    ephemos::include_clients!();
}
