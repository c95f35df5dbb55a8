//! Real parts for the ephemos tests: a tonic echo server on loopback that can be stopped
//! and restarted on the same port, a TCP proxy under the test's control that can refuse,
//! cut or freeze connections and records when it accepted each one, and a raw HTTP/2
//! server that answers pings with GOAWAY `too_many_pings`.
//!
//! Everything binds to `127.0.0.1:0` and stops when its handle is dropped.

mod echo;
mod proxy;
mod raw_h2;

pub use echo::{EchoServer, EchoService, pb};
pub use proxy::{Proxy, ProxyMode};
pub use raw_h2::TooManyPingsServer;
