//! A channel dropped while one of its names is being resolved stops at once: the
//! resolution does not keep the pool (its subchannels, cleanup and DNS task) alive until
//! the resolver gives up. The name server is a UDP socket that reads the question and
//! never answers.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use ephemos::{Address, Channel};

#[test]
fn dropping_the_channel_during_a_hanging_lookup_stops_its_tasks() {
    let name_server = UdpSocket::bind("127.0.0.1:0").unwrap();
    name_server
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let metrics = runtime.metrics();
    assert_eq!(metrics.num_alive_tasks(), 0);

    let channel = {
        let _in_runtime = runtime.enter();
        Channel::plaintext(Address::parse("dns:///echo.test:50051").unwrap())
            .target_name("echo")
            .dns_servers([name_server.local_addr().unwrap()])
            .connect_lazy()
            .unwrap()
    };
    // The question has been sent: the lookup is waiting for an answer that never comes.
    let mut question = [0u8; 512];
    name_server
        .recv_from(&mut question)
        .expect("the channel asks the name server");
    assert!(metrics.num_alive_tasks() > 0);

    drop(channel);
    let deadline = Instant::now() + Duration::from_secs(1);
    while metrics.num_alive_tasks() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        metrics.num_alive_tasks(),
        0,
        "tasks still alive 1 s after the channel was dropped"
    );
}
