// A setting that is validated but not applied yet is a warning on the struct's name
// (denied here to show it).
#![deny(deprecated)]

#[ephemos::client(target = "payments", config = "connections.toml", address = "dns:///payments.internal:8443", retry = false)]
pub struct Payments(ephemos_clients_tests::pb::echo_client::EchoClient<ephemos::Channel>);

fn main() {}
