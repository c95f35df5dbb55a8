#[ephemos::client(target = "payments", config = "connections.toml")]
pub struct Payments {
    client: ephemos_clients_tests::pb::echo_client::EchoClient<ephemos::Channel>,
}

fn main() {}
