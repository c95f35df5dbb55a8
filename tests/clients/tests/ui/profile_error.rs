// Every profile is checked when the crate compiles.
#[ephemos::client(target = "payments", config = "profiles.toml")]
pub struct Payments(ephemos_clients_tests::pb::echo_client::EchoClient<ephemos::Channel>);

fn main() {}
