// The constructors build the client with the struct's defaults: `T` needs one.
#[ephemos::client(target = "payments", config = "connections.toml")]
pub struct Payments<T>(ephemos_clients_tests::pb::echo_client::EchoClient<T>);

fn main() {}
