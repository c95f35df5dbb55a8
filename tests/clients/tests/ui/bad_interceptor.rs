// `interceptor` takes a function's path, and `propagate_identity` true or false.
#[ephemos::client(
    target = "payments",
    config = "connections.toml",
    interceptor = "add_token",
    propagate_identity = "yes"
)]
pub struct Payments(ephemos_clients_tests::pb::echo_client::EchoClient<ephemos::Channel>);

fn main() {}
