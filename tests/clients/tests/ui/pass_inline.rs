#[ephemos::client(address = "127.0.0.1:50051", identity = "plaintext", preset = "development", connect_timeout = "1s")]
pub struct LocalEcho(ephemos_clients_tests::pb::echo_client::EchoClient<ephemos::Channel>);

fn main() {
    assert_eq!(LocalEcho::CONFIG.connection.connect_timeout.as_secs(), 1);
}
