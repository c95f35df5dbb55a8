//! Real parts for the ephemos tests: a tonic echo server on loopback that can be stopped
//! and restarted on the same port (it records the `grpc-timeout` each call carried), a
//! TCP proxy under the test's control that can refuse, cut or freeze connections and
//! records when it accepted each one, a raw HTTP/2 server whose frames a test scripts
//! (for servers that misbehave on purpose), one of those that answers pings with GOAWAY
//! `too_many_pings`, and an h2 server that sends a graceful GOAWAY after a number of
//! calls while its listener stays open, counting the calls it executed; and an echo
//! server whose handlers fail on command, recording every attempt it received; and a
//! DNS server whose answers the test sets.
//!
//! Everything binds to `127.0.0.1:0` and stops when its handle is dropped.

mod dns;
mod echo;
mod failing;
mod goaway;
mod proxy;
pub mod raw;
mod settings;
mod too_many_pings;

pub use dns::DnsServer;
pub use echo::{EchoServer, EchoService, pb};
pub use failing::{Answer, FailingServer, Received};
pub use goaway::GoAwayServer;
pub use proxy::{Proxy, ProxyMode};
pub use raw::{RawConnection, RawRequest, RawServer, StreamEnd};
pub use settings::quick;
pub use too_many_pings::TooManyPingsServer;
