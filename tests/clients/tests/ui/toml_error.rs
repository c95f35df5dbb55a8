#[ephemos::client(target = "payments", config = "broken.toml")]
pub struct Payments(ephemos_clients_tests::pb::echo_client::EchoClient<ephemos::Channel>);

fn main() {}
