//! A DNS server on loopback for the tests of `dns:///` names: answers every A (and
//! AAAA) question with the addresses the test sets, with the TTL it was started with,
//! and counts the questions it was asked. Built on hickory-proto's message codec; only
//! UDP (the resolver falls back to TCP only for truncated answers, which these are not).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::net::UdpSocket;

/// A running DNS server; dropping it stops it.
pub struct DnsServer {
    addr: SocketAddr,
    answers: Arc<Mutex<Vec<IpAddr>>>,
    questions: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl DnsServer {
    /// Starts a server on `127.0.0.1:0` answering `addresses` with `ttl` seconds.
    pub async fn start(ttl: u32, addresses: impl IntoIterator<Item = IpAddr>) -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let answers = Arc::new(Mutex::new(addresses.into_iter().collect::<Vec<_>>()));
        let questions = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(serve(socket, ttl, answers.clone(), questions.clone()));
        DnsServer {
            addr,
            answers,
            questions,
            task,
        }
    }

    /// The address to send questions to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers with `addresses` from now on (none: NXDOMAIN).
    pub fn set(&self, addresses: impl IntoIterator<Item = IpAddr>) {
        *self.answers.lock().unwrap() = addresses.into_iter().collect();
    }

    /// Questions asked so far, counted here.
    pub fn questions(&self) -> usize {
        self.questions.load(Ordering::SeqCst)
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    socket: UdpSocket,
    ttl: u32,
    answers: Arc<Mutex<Vec<IpAddr>>>,
    questions: Arc<AtomicUsize>,
) {
    let mut buffer = vec![0; 4096];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buffer).await else {
            continue;
        };
        let Ok(query) = Message::from_vec(&buffer[..n]) else {
            continue;
        };
        questions.fetch_add(1, Ordering::SeqCst);
        let addresses = answers.lock().unwrap().clone();
        let mut response = Message::new();
        response
            .set_id(query.id())
            .set_message_type(MessageType::Response)
            .set_op_code(query.op_code())
            .set_recursion_desired(query.recursion_desired())
            .set_recursion_available(true)
            .set_authoritative(true);
        if addresses.is_empty() {
            response.set_response_code(ResponseCode::NXDomain);
        }
        for question in query.queries() {
            response.add_query(question.clone());
            for address in &addresses {
                let rdata = match (question.query_type(), address) {
                    (RecordType::A, IpAddr::V4(v4)) => RData::A(A(*v4)),
                    (RecordType::AAAA, IpAddr::V6(v6)) => RData::AAAA(AAAA(*v6)),
                    _ => continue,
                };
                response.add_answer(Record::from_rdata(question.name().clone(), ttl, rdata));
            }
        }
        if let Ok(bytes) = response.to_vec() {
            let _ = socket.send_to(&bytes, peer).await;
        }
    }
}
