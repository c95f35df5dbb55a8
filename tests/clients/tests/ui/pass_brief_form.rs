// The brief's form: no `target` and no `config`; `Payments` is target `payments` and
// `OrderHistory` is `order_history`, of the connections.toml next to this file.
#[ephemos::ephemos_client(preset = "high_throughput")]
#[allow(deprecated)]
pub struct Payments(ephemos_clients_tests::pb::echo_client::EchoClient<ephemos::Channel>);

/// Docs, derives and a defaulted type parameter are kept.
#[ephemos::client]
#[derive(Clone, Debug)]
pub struct OrderHistory<T = ephemos::Channel>(
    pub ephemos_clients_tests::pb::echo_client::EchoClient<T>,
);

fn main() {
    assert_eq!(Payments::TARGET, "payments");
    assert_eq!(Payments::CONFIG.pool.size, 10);
    assert_eq!(OrderHistory::TARGET, "order_history");
    let development = OrderHistory::BAKED.select(Some("development")).unwrap();
    assert_eq!(development.endpoints[0].to_string(), "127.0.0.1:50051");
    assert_eq!(OrderHistory::CONFIG.endpoints[0].to_string(), "orders.internal:8443");
    fn clone_and_debug<T: Clone + std::fmt::Debug>() {}
    clone_and_debug::<OrderHistory>();
}
