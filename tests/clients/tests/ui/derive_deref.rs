// The attribute implements Deref itself; a derive of it would conflict.
#[ephemos::client(target = "payments", config = "connections.toml")]
#[derive(Clone, derive_more::Deref)]
pub struct Payments(ephemos_clients_tests::pb::echo_client::EchoClient<ephemos::Channel>);

fn main() {}
