#[ephemos::client(target = "payments", config = "connections.toml", address = "10.0.0.1:1")]
pub struct Payments(ephemos_clients_tests::pb::echo_client::EchoClient<ephemos::Channel>);

fn main() {}
