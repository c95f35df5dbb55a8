#[ephemos::client(target = "payments", config = "connections.toml", preset = "hi_throughput")]
pub struct Payments(ephemos_clients_tests::pb::echo_client::EchoClient<ephemos::Channel>);

fn main() {}
