#[ephemos::client(target = "payments", config = "connections.toml", conect_timeout = "2s")]
pub struct Payments(ephemos_clients_tests::pb::echo_client::EchoClient<ephemos::Channel>);

fn main() {}
