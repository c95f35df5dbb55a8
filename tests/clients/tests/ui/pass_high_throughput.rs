#[ephemos::client(target = "payments", config = "connections.toml", preset = "high_throughput")]
pub struct Payments(ephemos_clients_tests::pb::echo_client::EchoClient<ephemos::Channel>);

fn main() {
    assert_eq!(Payments::CONFIG.preset.name(), "high_throughput");
}
