#[ephemos::client(target = "payments", config = "connections.toml", retry = true, hedging = true)]
pub struct Payments(ephemos_clients_tests::pb::echo_client::EchoClient<ephemos::Channel>);

fn main() {}
