#[ephemos::client(target = "payments", config = "connections.toml", connect_timeout = "10 parsecs")]
pub struct Payments(ephemos_clients_tests::pb::echo_client::EchoClient<ephemos::Channel>);

fn main() {}
