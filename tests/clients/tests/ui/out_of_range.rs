#[ephemos::client(target = "payments", config = "connections.toml", retry_max_attempts = 7, pool_size = 65)]
pub struct Payments(ephemos_clients_tests::pb::echo_client::EchoClient<ephemos::Channel>);

fn main() {}
