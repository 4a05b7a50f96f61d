//! HTTP/2 with prior knowledge through hyper's client: one connection, one stream at a time,
//! reopened when the server ends it.

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use super::{Attempt, Outcome, ThreadRun, drive};

pub(super) async fn connection(thread: &ThreadRun, index: usize) {
    let uris: Vec<http::Uri> = thread
        .plan
        .paths
        .iter()
        .map(|p| {
            format!("http://{}{p}", thread.plan.addr)
                .parse()
                .unwrap_or_else(|_| http::Uri::from_static("/"))
        })
        .collect();
    drive(
        thread,
        index,
        async |sender: &mut Option<SendRequest<Empty<Bytes>>>, path| {
            exchange(sender, thread, &uris[path]).await
        },
    )
    .await;
}

/// Sends a request for `uri` on the connection (opening one if needed) and reads its answer.
async fn exchange(
    sender: &mut Option<SendRequest<Empty<Bytes>>>,
    thread: &ThreadRun,
    uri: &http::Uri,
) -> Attempt {
    if sender.as_ref().is_none_or(|s| s.is_closed()) {
        let stream = match TcpStream::connect(thread.plan.addr).await {
            Ok(s) => s,
            Err(_) => return Attempt::Failed(Outcome::ConnectError),
        };
        let _ = stream.set_nodelay(true);
        match hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
        {
            Ok((s, conn)) => {
                tokio::spawn(conn);
                *sender = Some(s);
            }
            Err(_) => return Attempt::Failed(Outcome::ConnectError),
        }
    }
    let s = sender.as_mut().expect("connected above");
    if s.ready().await.is_err() {
        return Attempt::Retry;
    }
    let req = Request::get(uri.clone())
        .body(Empty::new())
        .expect("a valid request");
    let res = match s.try_send_request(req).await {
        Ok(res) => res,
        // Handed back unsent: the connection was gone before it went out.
        Err(e) if e.message().is_some() || refused_unprocessed(e.error()) => {
            return Attempt::Retry;
        }
        Err(_) => return Attempt::Failed(Outcome::Reset),
    };
    let status = res.status();
    match res.into_body().collect().await {
        Ok(_) => Attempt::Answered(status.as_u16()),
        Err(_) => Attempt::Failed(Outcome::Reset),
    }
}

/// Whether `e` (or an error in its source chain) says the server refused an HTTP/2 request
/// it guarantees it did not process: a stream above the last stream id of its GOAWAY(NO_ERROR)
/// (RFC 9113 §6.8), or reset with REFUSED_STREAM (§8.7). A client may send it again.
///
/// ```
/// let io = std::io::Error::other("not an HTTP/2 error");
/// assert!(!regiment_bench::load::refused_unprocessed(&io));
/// ```
pub fn refused_unprocessed(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(s) = source {
        if let Some(h2) = s.downcast_ref::<h2::Error>() {
            return (h2.is_go_away() && h2.reason() == Some(h2::Reason::NO_ERROR))
                || (h2.is_reset() && h2.reason() == Some(h2::Reason::REFUSED_STREAM));
        }
        source = s.source();
    }
    false
}
