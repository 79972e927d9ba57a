//! What a call leaves behind for operators, through the real binary: JSON
//! access lines naming the call and its tenant (never its key), a request id
//! echoed to the caller, and spans exported over OTLP into the caller's
//! trace, received by a real gRPC collector endpoint.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::trace::v1::Span;
use support::{Replica, as_tenant, find, tenant_key};

/// A config serving the 50-center sample, with bank tenant `icbc` and
/// `extra` tables.
fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let file = dir.join("repairmatch.toml");
    let hash = repairmatch::auth::key_hash(&tenant_key("icbc"));
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_pause_ms = 0\n\n\
         [store]\npath = \"{store}\"\nload_sample_when_empty = true\nsample_centers = 50\n\n\
         [tenants.icbc]\nrole = \"bank\"\nkey_sha256 = [\"{hash}\"]\n\n{extra}\n",
        store = dir.join("catalog.redb").display(),
    );
    std::fs::write(&file, config).unwrap();
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_access_lines_name_the_call_and_tenant_never_the_key_and_the_request_id_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let replica = Replica::start(&write_config(dir.path(), "[log]\nformat = \"json\"\naccess = true\n"));
    let mut finder = replica.finder().await;

    let mut request = as_tenant("icbc", find(3));
    request.metadata_mut().insert("x-request-id", "bank-app-req-42".parse().unwrap());
    let answer = finder.find_repair_center(request).await.expect("found");
    assert_eq!(answer.metadata().get("x-request-id").unwrap(), "bank-app-req-42", "the caller's id comes back");
    let unnamed = finder.find_repair_center(as_tenant("icbc", find(3))).await.expect("found");
    let fresh = unnamed.metadata().get("x-request-id").expect("an id is made when the caller sent none");
    assert_eq!(fresh.len(), 32);
    let refused = finder.find_repair_center(find(3)).await.expect_err("no key, and anonymous Find is off");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    let (status, lines) = replica.terminate();
    assert!(status.success());
    for line in &lines {
        let parsed: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|error| panic!("not one JSON object: {line:?}: {error}"));
        assert!(parsed["level"].is_string() && parsed["timestamp"].is_string(), "{line}");
        assert!(!line.contains(&tenant_key("icbc")), "a key in the logs: {line}");
    }
    let access: Vec<serde_json::Value> = lines
        .iter()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|line| line["target"] == "repairmatch::access")
        .collect();
    assert_eq!(access.len(), 3, "one line per call: {access:#?}");
    let named = access.iter().find(|line| line["span"]["request_id"] == "bank-app-req-42").expect("the named call");
    assert_eq!(named["message"], "call");
    assert_eq!(named["code"], "OK");
    assert_eq!(named["span"]["method"], "/repairmatch.v1.RepairMatchService/FindRepairCenter");
    assert_eq!(named["span"]["tenant"], "icbc");
    assert!(named["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{named}");
    let anonymous = access.iter().find(|line| line["code"] == "UNAUTHENTICATED").expect("the refused call");
    assert!(anonymous["span"]["tenant"].is_null(), "no tenant for a call without a key: {anonymous}");
}

/// An OTLP collector's trace endpoint that keeps what it receives.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request.into_inner().resource_spans.into_iter().flat_map(|r| r.scope_spans).flat_map(|s| s.spans);
        self.spans.lock().unwrap().extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_sent_with_a_sampled_traceparent_is_exported_into_the_callers_trace() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    let serving = collector.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(serving))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
    });
    let dir = tempfile::tempdir().unwrap();
    // No new trace is sampled here: only a caller's sampled one is exported.
    let tracing = format!("[tracing]\notlp_endpoint = \"http://{collector_addr}\"\nsample_ratio = 0.0\n");
    let replica = Replica::start(&write_config(dir.path(), &tracing));
    let mut finder = replica.finder().await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_id = "00f067aa0ba902b7";
    let mut traced = as_tenant("icbc", find(3));
    traced.metadata_mut().insert("traceparent", format!("00-{trace_id}-{parent_id}-01").parse().unwrap());
    finder.find_repair_center(traced).await.expect("found");
    finder.find_repair_center(as_tenant("icbc", find(3))).await.expect("found, not traced");

    // Stopping flushes the spans not yet sent.
    let (status, lines) = replica.terminate();
    assert!(status.success(), "{}", lines.join("\n"));
    let spans = collector.spans.lock().unwrap().clone();
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    assert_eq!(spans.len(), 1, "the sampled call only: {spans:#?}");
    let span = &spans[0];
    assert_eq!(span.name, "repairmatch.v1.RepairMatchService/FindRepairCenter");
    assert_eq!(hex(&span.trace_id), trace_id, "in the caller's trace");
    assert_eq!(hex(&span.parent_span_id), parent_id, "under the caller's span");
    let attribute = |key: &str| {
        span.attributes.iter().find(|a| a.key == key).and_then(|a| a.value.clone()).map(|v| format!("{v:?}"))
    };
    assert!(attribute("tenant").is_some_and(|v| v.contains("icbc")), "{:?}", span.attributes);
    assert!(attribute("request_id").is_some(), "{:?}", span.attributes);
}
