//! The gRPC port as production runs it, through the real binary and real
//! clients: a SIGTERM under load, deadlines, load shedding, and TLS and
//! mutual TLS with a certificate rotated under a running server.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use repairmatch_proto::v1 as pb;
use repairmatch_proto::v1::catalog_service_client::CatalogServiceClient;
use repairmatch_proto::v1::repair_match_service_client::RepairMatchServiceClient;
use support::{OPS_KEY, Pki, Replica, Usage, center, eventually, find, free_port, listen_address_in};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// A config serving the 200-center sample on a free port, with metrics,
/// `server` keys added to `[server]`.
fn write_config(dir: &Path, server: &str) -> PathBuf {
    let file = dir.join("repairmatch.toml");
    let hash = repairmatch::auth::key_hash(OPS_KEY);
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:{port}\"\n{server}\n\n\
         [store]\npath = \"{store}\"\nload_sample_when_empty = true\nsample_centers = 200\n\n\
         [auth]\nallow_anonymous_find = true\n\n[tenants.ops]\nrole = \"ops\"\nkey_sha256 = [\"{hash}\"]\n",
        port = free_port(),
        store = dir.join("catalog.redb").display(),
    );
    std::fs::write(&file, config).unwrap();
    file
}

/// An import that stays in flight until the returned sender sends the rest
/// (or is dropped): one center is sent at once.
fn import_in_flight(
    mut catalog: CatalogServiceClient<Channel>,
    timeout: Option<&str>,
) -> (
    mpsc::Sender<pb::ImportRepairCentersRequest>,
    tokio::task::JoinHandle<Result<pb::ImportRepairCentersResponse, tonic::Status>>,
) {
    let (send, receive) = mpsc::channel(16);
    send.try_send(pb::ImportRepairCentersRequest { repair_center: Some(center("streamed-0", 1.0)) }).unwrap();
    let mut request = tonic::Request::new(ReceiverStream::new(receive));
    request.metadata_mut().insert("authorization", format!("Bearer {OPS_KEY}").parse().unwrap());
    if let Some(timeout) = timeout {
        request.metadata_mut().insert("grpc-timeout", timeout.parse().unwrap());
    }
    let call =
        tokio::spawn(async move { catalog.import_repair_centers(request).await.map(tonic::Response::into_inner) });
    (send, call)
}

/// Starts an import with `grpc-timeout: timeout` whose body never ends; the
/// `grpc-status` the server answers with, and when.
async fn import_never_finished_over_raw_http2(addr: std::net::SocketAddr, timeout: &str) -> (i32, Duration) {
    use hyper::body::Frame;
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(connection);
    let (_body_stays_open, frames) = mpsc::channel::<Result<Frame<bytes::Bytes>, std::convert::Infallible>>(1);
    let request =
        tonic::codegen::http::Request::post(format!("http://{addr}/repairmatch.v1.CatalogService/ImportRepairCenters"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("grpc-timeout", timeout)
            .header("authorization", format!("Bearer {OPS_KEY}"))
            .body(http_body_util::StreamBody::new(ReceiverStream::new(frames)))
            .unwrap();
    let started = Instant::now();
    let response = sender.send_request(request).await.expect("an answer");
    let took = started.elapsed();
    let status = response.headers().get("grpc-status").expect("a trailers-only answer").to_str().unwrap();
    (status.parse().unwrap(), took)
}

/// Whether a call never reached the server, so a client may send it again:
/// refused by the server's GOAWAY (a stream above its last stream id), or
/// still queued in the client when the connection closed.
fn never_started(status: &tonic::Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(error) = source {
        if let Some(h2) = error.downcast_ref::<h2::Error>() {
            return h2.is_go_away() && h2.is_remote() && h2.reason() == Some(h2::Reason::NO_ERROR);
        }
        if let Some(hyper) = error.downcast_ref::<hyper::Error>()
            && hyper.is_canceled()
        {
            return true;
        }
        source = error.source();
    }
    false
}

async fn health(channel: Channel, service: &str) -> ServingStatus {
    let request = tonic_health::pb::HealthCheckRequest { service: service.into() };
    let status = HealthClient::new(channel).check(request).await.expect("health answers").into_inner().status;
    ServingStatus::try_from(status).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_fails_no_accepted_call_and_exits_zero_within_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let (pause, drain) = (Duration::from_millis(1500), Duration::from_secs(10));
    let config = write_config(
        dir.path(),
        &format!("shutdown_pause_ms = {}\ndrain_timeout_ms = {}", pause.as_millis(), drain.as_millis()),
    );
    let replica = Replica::start(&config);
    let addr = replica.addr;

    // Callers that go on calling until health says NOT_SERVING, as a
    // client-side balancer would once its probe sees it.
    let not_serving = Arc::new(AtomicBool::new(false));
    let mut callers = Vec::new();
    for _ in 0..4 {
        let mut finder = replica.finder().await;
        let not_serving = Arc::clone(&not_serving);
        callers.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0, Vec::new());
            while !not_serving.load(Ordering::SeqCst) {
                match finder.find_repair_center(find(10)).await {
                    Ok(_) => ok += 1,
                    Err(status) => failed.push(status),
                }
            }
            (ok, failed)
        }));
    }
    // An import in flight through the whole shutdown: it finishes after the
    // listener has closed.
    let (rest_of_import, import) = import_in_flight(replica.catalog().await, None);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let signalled = Instant::now();
    replica.signal("TERM");
    let probe = replica.channel().await;
    eventually("health NOT_SERVING after SIGTERM", Duration::from_secs(5), async || {
        health(probe.clone(), "").await == ServingStatus::NotServing
    })
    .await;
    assert_eq!(health(probe.clone(), "repairmatch.v1.RepairMatchService").await, ServingStatus::NotServing);
    not_serving.store(true, Ordering::SeqCst);
    // During the pause the port still takes new connections and calls.
    let mut late = replica.finder().await;
    late.find_repair_center(find(3)).await.expect("a call during the pause is served");

    // Then the listener closes...
    eventually("the listener closes after the pause", pause + Duration::from_secs(10), async || {
        tokio::net::TcpStream::connect(addr).await.is_err()
    })
    .await;
    assert!(signalled.elapsed() >= pause, "served on through the whole pause");
    // ...and the import in flight still completes.
    for i in 1..=3 {
        let item = pb::ImportRepairCentersRequest { repair_center: Some(center(&format!("streamed-{i}"), 1.0)) };
        rest_of_import.send(item).await.unwrap();
    }
    drop(rest_of_import);
    let imported = import.await.unwrap().expect("the import in flight completes during the drain");
    assert_eq!((imported.received, imported.imported), (4, 4));

    let mut calls = 0;
    for caller in callers {
        let (ok, failed) = caller.await.unwrap();
        assert!(failed.is_empty(), "accepted calls failed: {failed:?}");
        calls += ok;
    }
    assert!(calls > 0, "the callers were calling");
    let (status, lines) = replica.wait();
    let exited = signalled.elapsed();
    assert!(status.success(), "exit status {status}: {}", lines.join("\n"));
    assert!(exited < pause + drain, "exited within the pause and the drain: {exited:?}");
    assert!(lines.iter().any(|line| line.contains("drained")), "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_ends_at_the_callers_deadline_or_the_servers_cap_with_deadline_exceeded() {
    let dir = tempfile::tempdir().unwrap();
    let cap = Duration::from_millis(1500);
    let replica = Replica::start(&write_config(dir.path(), &format!("default_timeout_ms = {}", cap.as_millis())));

    // The caller's 200 ms deadline, shorter than the cap, wins. Sent over
    // raw HTTP/2: tonic's client would end the call itself at its deadline,
    // racing the server's answer this checks.
    let (status, took) = import_never_finished_over_raw_http2(replica.addr, "200m").await;
    assert_eq!(status, Code::DeadlineExceeded as i32);
    assert!(took >= Duration::from_millis(200) && took < cap, "ended at the caller's deadline: {took:?}");

    // No deadline sent: the server's cap ends it.
    let started = Instant::now();
    let (_keep_open, call) = import_in_flight(replica.catalog().await, None);
    let status = call.await.unwrap().expect_err("the import never finished sending");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(started.elapsed() >= cap, "ended at the cap: {:?}", started.elapsed());

    let series = "grpc_server_handled_total{grpc_code=\"DEADLINE_EXCEEDED\",grpc_method=\"ImportRepairCenters\",\
                  grpc_service=\"repairmatch.v1.CatalogService\"}";
    assert_eq!(replica.metric(series), 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_concurrency_limit_calls_are_shed_at_once_and_health_still_answers() {
    let dir = tempfile::tempdir().unwrap();
    let replica = Replica::start(&write_config(dir.path(), "max_concurrent_requests = 2"));
    let (first, first_call) = import_in_flight(replica.catalog().await, None);
    let (second, second_call) = import_in_flight(replica.catalog().await, None);
    let in_flight = async || replica.metric("repairmatch_requests_in_flight") == 2.0;
    eventually("two imports in flight", Duration::from_secs(10), in_flight).await;

    let mut finder = replica.finder().await;
    let mut shed = None;
    for _ in 0..3 {
        let refused = finder.find_repair_center(find(3)).await.expect_err("over the limit");
        assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
        shed = Some(refused);
    }
    assert!(shed.unwrap().message().contains("limit"));
    assert_eq!(replica.metric("repairmatch_requests_shed_total"), 3.0, "each refusal counted, none queued");
    assert_eq!(health(replica.channel().await, "").await, ServingStatus::Serving, "probes are never shed");

    drop((first, second));
    first_call.await.unwrap().expect("the first import completes");
    second_call.await.unwrap().expect("the second import completes");
    finder.find_repair_center(find(3)).await.expect("served again once calls finished");
}

/// A TLS channel to `addr` trusting `ca`, presenting `identity` when given.
async fn tls_channel(
    addr: std::net::SocketAddr,
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(std::fs::read(ca).unwrap()));
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(std::fs::read(cert).unwrap(), std::fs::read(key).unwrap()));
    }
    Channel::from_shared(format!("https://{addr}")).unwrap().tls_config(tls)?.connect().await
}

async fn finds_over(channel: Result<Channel, tonic::transport::Error>) -> Result<(), String> {
    let channel = channel.map_err(|error| format!("connect: {error:?}"))?;
    RepairMatchServiceClient::new(channel).find_repair_center(find(3)).await.map(drop).map_err(|s| format!("{s:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_trusting_clients_only_and_a_rotated_certificate_takes_over_live() {
    let dir = tempfile::tempdir().unwrap();
    let tls_dir = dir.path().join("tls");
    std::fs::create_dir(&tls_dir).unwrap();
    let pki = Pki::new(dir.path());
    let first_ca = pki.ca("first-ca");
    let (cert, key) = pki.issue("first-ca", "server", Usage::Server);
    let (served_cert, served_key) = (tls_dir.join("tls.crt"), tls_dir.join("tls.key"));
    std::fs::copy(&cert, &served_cert).unwrap();
    std::fs::copy(&key, &served_key).unwrap();
    let tls =
        format!("[server.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"", served_cert.display(), served_key.display());
    let replica = Replica::start(&write_config(dir.path(), &tls));
    let addr = replica.addr;

    finds_over(tls_channel(addr, &first_ca, None).await).await.expect("a client trusting the CA is served");
    let plaintext = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await;
    assert!(finds_over(plaintext).await.is_err(), "plaintext is refused on a TLS port");
    let kept = tls_channel(addr, &first_ca, None).await.unwrap();

    // cert-manager renews: a certificate from another CA replaces the files.
    let second_ca = pki.ca("second-ca");
    let (cert, key) = pki.issue("second-ca", "server-renewed", Usage::Server);
    assert!(finds_over(tls_channel(addr, &second_ca, None).await).await.is_err(), "not yet the renewed one");
    std::fs::copy(&key, tls_dir.join("tls.key.new")).unwrap();
    std::fs::copy(&cert, tls_dir.join("tls.crt.new")).unwrap();
    std::fs::rename(tls_dir.join("tls.key.new"), &served_key).unwrap();
    std::fs::rename(tls_dir.join("tls.crt.new"), &served_cert).unwrap();
    eventually("new handshakes get the renewed certificate", Duration::from_secs(10), async || {
        finds_over(tls_channel(addr, &second_ca, None).await).await.is_ok()
    })
    .await;
    assert!(finds_over(tls_channel(addr, &first_ca, None).await).await.is_err(), "the old certificate is gone");
    finds_over(Ok(kept)).await.expect("a connection made before the renewal goes on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_refuses_a_client_without_a_certificate_from_the_client_ca_and_probes_use_the_health_port() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let server_ca = pki.ca("server-ca");
    let (server_cert, server_key) = pki.issue("server-ca", "server", Usage::Server);
    let client_ca = pki.ca("client-ca");
    let (bank_cert, bank_key) = pki.issue("client-ca", "bank-app", Usage::Client);
    pki.ca("rogue-ca");
    let (rogue_cert, rogue_key) = pki.issue("rogue-ca", "rogue", Usage::Client);
    let tls = format!(
        "health_listen = \"127.0.0.1:0\"\n\n\
         [server.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\nclient_ca_file = \"{}\"",
        server_cert.display(),
        server_key.display(),
        client_ca.display()
    );
    let mut replica = Replica::start(&write_config(dir.path(), &tls));
    let addr = replica.addr;

    // The kubelet's probes speak plaintext, without a certificate: health
    // alone answers them on a port of its own, and nothing else does.
    let health_addr = listen_address_in(&replica.wait_for("serving health checks")).unwrap();
    let probe = Channel::from_shared(format!("http://{health_addr}")).unwrap().connect().await.unwrap();
    assert_eq!(health(probe.clone(), "").await, ServingStatus::Serving);
    assert_eq!(health(probe.clone(), "repairmatch.v1.RepairMatchService").await, ServingStatus::Serving);
    let find_on_probe_port = RepairMatchServiceClient::new(probe).find_repair_center(find(3)).await;
    assert_eq!(find_on_probe_port.unwrap_err().code(), Code::Unimplemented, "health only on the probe port");

    finds_over(tls_channel(addr, &server_ca, Some((&bank_cert, &bank_key))).await)
        .await
        .expect("a client with a certificate from the client CA is served");
    let anonymous = finds_over(tls_channel(addr, &server_ca, None).await).await;
    assert!(anonymous.is_err(), "a client without a certificate is refused");
    let rogue = finds_over(tls_channel(addr, &server_ca, Some((&rogue_cert, &rogue_key))).await).await;
    assert!(rogue.is_err(), "a certificate from another CA is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aged_connections_go_away_without_failing_calls_and_only_a_call_past_the_grace_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (age, grace) = (Duration::from_millis(300), Duration::from_millis(1000));
    let server =
        format!("max_connection_age_ms = {}\nmax_connection_age_grace_ms = {}", age.as_millis(), grace.as_millis());
    let replica = Replica::start(&write_config(dir.path(), &server));

    // One client, calling through several connection lifetimes: no call the
    // server took fails. A call the client sends as the connection goes away
    // never starts (refused by GOAWAY, or still queued when it closed); gRPC
    // clients send those again (grpc-go and grpc-java transparently; tonic
    // leaves it to the caller), and nothing else may fail.
    let mut finder = replica.finder().await;
    let started = Instant::now();
    let (mut calls, mut refused_unstarted) = (0, 0);
    while started.elapsed() < age * 5 {
        match finder.find_repair_center(find(3)).await {
            Ok(_) => calls += 1,
            Err(status) if never_started(&status) => refused_unstarted += 1,
            Err(status) => panic!("a call failed as its connection aged out: {status:?}"),
        }
    }
    assert!(calls > refused_unstarted * 10, "{calls} calls, {refused_unstarted} refused unstarted");

    // A call in flight when its connection ages out finishes within the grace...
    let (rest, call) = import_in_flight(replica.catalog().await, None);
    tokio::time::sleep(age + Duration::from_millis(300)).await;
    rest.send(pb::ImportRepairCentersRequest { repair_center: Some(center("late", 1.0)) }).await.unwrap();
    drop(rest);
    let imported = call.await.unwrap().expect("a call within the grace completes");
    assert_eq!(imported.imported, 2);

    // ...and one that outlasts it is cut with its connection (the client
    // sees the connection go: tonic calls that UNKNOWN, a broken pipe).
    let started = Instant::now();
    let (_never_finished, call) = import_in_flight(replica.catalog().await, None);
    call.await.unwrap().expect_err("cut after the age and the grace");
    assert!(started.elapsed() >= grace, "not before the grace was over: {:?}", started.elapsed());
}
