// No `target` and no `address`: the target is the struct's name in snake case.
#[ephemos::client(config = "connections.toml")]
pub struct Paymnts(ephemos_clients_tests::pb::echo_client::EchoClient<ephemos::Channel>);

fn main() {}
