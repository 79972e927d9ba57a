//! Live config reload through a real server: a ConfigMap-style swap under a
//! steady Find load, a bad file that changes nothing and is counted once,
//! a watcher that goes quiet after an edit, and SIGHUP.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use repairmatch_proto::v1 as pb;
use repairmatch_tests::*;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// A config whose default profile weighs only `factor`.
fn config_weighing(factor: &str) -> String {
    let weights: Vec<String> = ["distance", "rating", "price", "brand_support", "downtime"]
        .iter()
        .map(|f| format!("{f} = {}", if *f == factor { "1.0" } else { "0.0" }))
        .collect();
    format!("[auth]\nallow_anonymous_find = true\n\n[profiles.default]\nweights = {{ {} }}\n", weights.join(", "))
}

/// Close but poorly rated, and far but excellent.
fn fixture() -> Fixture {
    let mut close = center_east("close-poor", 1.0);
    close.rating = Some(pb::Rating { average: 2.0, count: 400 });
    let mut far = center_east("far-excellent", 20.0);
    far.rating = Some(pb::Rating { average: 4.9, count: 900 });
    Fixture::with_centers(vec![close, far])
}

/// A config the service must refuse: all weights zero, a negative one, and
/// a misspelt key.
fn broken_config() -> String {
    config_weighing("none") + "\n[profiles.nearest]\nweights = { distance = -2 }\n\n[server]\nlisen = 1\n"
}

/// Times the service has read its config file for a reload.
fn reload_attempts(app: &repairmatch::App) -> u64 {
    app.metrics().config_reload_attempts.get()
}

/// Waits (bounded) until the service stops reading its config file: the
/// attempt count holds still over a whole quiet window. A watcher that reacts
/// to its own reads never gets there.
async fn settled_reload_attempts(app: &repairmatch::App) -> u64 {
    const QUIET: Duration = Duration::from_secs(3);
    for _ in 0..5 {
        let before = reload_attempts(app);
        tokio::time::sleep(QUIET).await;
        if reload_attempts(app) == before {
            return before;
        }
    }
    panic!("the config file is still being re-read ({} reads): a reload loop", reload_attempts(app));
}

/// After one bad edit: refused, counted once, and no more reload work.
async fn refused_once_then_quiet(app: &repairmatch::App) {
    eventually("the refusal", async || app.config_reloads_refused() >= 1).await;
    let attempts = settled_reload_attempts(app).await;
    assert!(attempts >= 1, "the edit was read");
    assert_eq!(app.config_reloads_refused(), 1, "one bad edit, one refusal ({attempts} reads)");
    assert!(matches!(*app.config_status().borrow(), repairmatch::app::ConfigStatus::Refused(_)));
    assert_eq!(app.config().version, 1, "the old config serves");
}

/// Waits (bounded) until `check` holds, returning how long it took.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < Duration::from_secs(20), "{what}: not seen within 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_map_swap_under_load_changes_the_ranking_with_no_failed_call() {
    let dir = tempfile::tempdir().unwrap();
    let file = publish_config_map(dir.path(), "v1", &config_weighing("distance"));
    let server = TestServer::start_watching(&fixture(), &file).await;
    let client = server.client().await;

    let first = client.clone().find_repair_center(find_request()).await.unwrap().into_inner();
    assert_eq!((first.config_version, match_ids(&first)[0].as_str()), (1, "close-poor"));

    // A steady load of Finds, bounded by a flag and a count, checking every answer.
    let stop = Arc::new(AtomicBool::new(false));
    let (calls, failures) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (mut client, stop, calls, failures) = (client.clone(), stop.clone(), calls.clone(), failures.clone());
            tokio::spawn(async move {
                let mut highest_version = 0;
                while !stop.load(Ordering::Relaxed) && calls.load(Ordering::Relaxed) < 200_000 {
                    calls.fetch_add(1, Ordering::Relaxed);
                    match client.find_repair_center(find_request()).await {
                        Ok(response) => {
                            let response = response.into_inner();
                            assert!(response.config_version >= highest_version, "versions never go back");
                            highest_version = response.config_version;
                            let expected_first =
                                if response.config_version == 1 { "close-poor" } else { "far-excellent" };
                            assert_eq!(match_ids(&response)[0], expected_first, "ranked under its own config");
                        }
                        Err(_) => {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    eventually("the load under the first config", async || calls.load(Ordering::Relaxed) >= 40).await;

    publish_config_map(dir.path(), "v2", &config_weighing("rating"));
    let delay = eventually("the new weights", async || {
        let response = client.clone().find_repair_center(find_request()).await.unwrap().into_inner();
        response.config_version == 2 && match_ids(&response)[0] == "far-excellent"
    })
    .await;
    println!("new config served {delay:?} after the ConfigMap swap");
    let calls_at_swap = calls.load(Ordering::Relaxed);
    eventually("the load under the new config", async || calls.load(Ordering::Relaxed) >= calls_at_swap + 40).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.expect("load task");
    }
    assert_eq!(failures.load(Ordering::Relaxed), 0, "no call failed across the reload");
    assert!(calls.load(Ordering::Relaxed) > 20, "the load really ran: {}", calls.load(Ordering::Relaxed));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_reload_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = publish_config_map(dir.path(), "v1", &config_weighing("distance"));
    let server = TestServer::start_watching(&fixture(), &file).await;
    let mut client = server.client().await;
    let mut health = HealthClient::new(server.channel().await);
    let config_health = || HealthCheckRequest { service: "repairmatch.config".into() };
    assert_eq!(health.check(config_health()).await.unwrap().into_inner().status(), ServingStatus::Serving);

    publish_config_map(dir.path(), "v2", &broken_config());
    eventually("the refusal", async || {
        health.check(config_health()).await.unwrap().into_inner().status() == ServingStatus::NotServing
    })
    .await;
    assert_eq!(server.app.config_reloads_refused(), 1);
    let metrics = scrape_metrics(&server).await;
    assert!(metrics.contains("repairmatch_config_reloads_refused_total 1"), "{metrics}");
    assert!(metrics.contains("repairmatch_config_file_in_force 0"), "{metrics}");
    assert!(metrics.contains("repairmatch_config_version 1"), "{metrics}");
    assert!(metrics.contains("repairmatch_config_reload_attempts_total "), "{metrics}");
    let response = client.find_repair_center(find_request()).await.unwrap().into_inner();
    assert_eq!((response.config_version, match_ids(&response)[0].as_str()), (1, "close-poor"), "old config serves");
    let problems = match &*server.app.config_status().borrow() {
        repairmatch::app::ConfigStatus::Refused(problems) => problems.clone(),
        other => panic!("{other:?}"),
    };
    assert!(
        problems.iter().any(|p| p.contains("repairmatch.toml") && p.contains("profiles.default.weights")),
        "{problems:?}"
    );
    assert!(problems.iter().any(|p| p.contains("profiles.nearest.weights.distance")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("repairmatch.toml: server.lisen: unknown key")), "{problems:?}");
    assert_eq!(problems.len(), 3, "every problem, each once: {problems:?}");

    publish_config_map(dir.path(), "v3", &config_weighing("rating"));
    eventually("the fixed file", async || {
        health.check(config_health()).await.unwrap().into_inner().status() == ServingStatus::Serving
    })
    .await;
    let response = client.find_repair_center(find_request()).await.unwrap().into_inner();
    assert_eq!((response.config_version, match_ids(&response)[0].as_str()), (2, "far-excellent"));
    let metrics = scrape_metrics(&server).await;
    assert!(metrics.contains("repairmatch_config_file_in_force 1"), "{metrics}");
    assert!(metrics.contains("repairmatch_config_version 2"), "{metrics}");
    server.stop().await;
}

/// GET /metrics from the metrics listener, over a real socket.
async fn scrape_metrics(server: &TestServer) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(repairmatch::metrics::serve_metrics(listener, server.app.clone(), async {
        let _ = stopped.await;
    }));
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let _ = stop.send(());
    serving.await.unwrap().unwrap();
    assert!(response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_edit_in_place_is_refused_once_and_the_watcher_goes_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("repairmatch.toml");
    std::fs::write(&file, config_weighing("distance")).unwrap();
    let server = TestServer::start_watching(&fixture(), &file).await;
    std::fs::write(&file, broken_config()).unwrap();
    refused_once_then_quiet(&server.app).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_config_map_swap_is_refused_once_and_the_watcher_goes_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let file = publish_config_map(dir.path(), "v1", &config_weighing("distance"));
    let server = TestServer::start_watching(&fixture(), &file).await;
    publish_config_map(dir.path(), "v2", &broken_config());
    refused_once_then_quiet(&server.app).await;
    server.stop().await;
}

/// Sends this test process a SIGHUP. Only one test may use it: every server
/// in the process with a SIGHUP handler reloads.
fn hang_up() {
    let status = std::process::Command::new("kill").args(["-HUP", &std::process::id().to_string()]).status().unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_file_and_counts_an_unchanged_refused_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("repairmatch.toml");
    std::fs::write(&file, config_weighing("distance")).unwrap();
    let server = TestServer::start_with_config_file(&fixture(), &file, false).await;
    repairmatch::reload::reload_on_sighup(server.app.clone(), vec![file.clone()]).expect("SIGHUP handler");
    std::fs::write(&file, config_weighing("rating")).unwrap();
    let mut client = server.client().await;
    let before = client.find_repair_center(find_request()).await.unwrap().into_inner();
    assert_eq!(before.config_version, 1, "no watcher here: nothing reloads by itself");

    hang_up();
    eventually("the SIGHUP reload", async || {
        let response = client.find_repair_center(find_request()).await.unwrap().into_inner();
        response.config_version == 2 && match_ids(&response)[0] == "far-excellent"
    })
    .await;
    eventually("the first SIGHUP read counted", async || reload_attempts(&server.app) == 1).await;

    // SIGHUP always reads the file; the same bytes again change nothing.
    hang_up();
    eventually("the second SIGHUP read", async || reload_attempts(&server.app) == 2).await;
    assert_eq!(server.app.config().version, 2);

    std::fs::write(&file, broken_config()).unwrap();
    hang_up();
    eventually("the refusal", async || server.app.config_reloads_refused() == 1).await;
    hang_up();
    eventually("the read of the same refused file", async || reload_attempts(&server.app) == 4).await;
    assert_eq!(server.app.config_reloads_refused(), 1, "a refused file read twice is one refusal");
    assert!(matches!(*server.app.config_status().borrow(), repairmatch::app::ConfigStatus::Refused(_)));

    std::fs::write(&file, config_weighing("distance")).unwrap();
    hang_up();
    eventually("the fixed file", async || server.app.config().version == 3).await;
    assert_eq!(*server.app.config_status().borrow(), repairmatch::app::ConfigStatus::Current);
    assert_eq!(server.app.config_reloads_refused(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_key_takes_effect_on_reload_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("repairmatch.toml");
    let key = key_of("provider-fix");
    let with_tenant = |hashes: &str| {
        format!(
            "[auth]\nallow_anonymous_find = true\n\n[tenants.provider-fix]\nrole = \"provider\"\nkey_sha256 = [{hashes}]\n"
        )
    };
    let hash = format!("\"{}\"", repairmatch::auth::key_hash(&key));
    std::fs::write(&file, with_tenant(&hash)).unwrap();
    let server = TestServer::start_with_config_file(&Fixture::with_centers(vec![]), &file, false).await;
    let mut catalog = server.catalog_as(Some(key.clone())).await;
    let write = || pb::UpsertRepairCentersRequest { centers: vec![center_east("c", 1.0)] };
    assert!(catalog.upsert_repair_centers(write()).await.is_ok());

    std::fs::write(&file, with_tenant("")).unwrap();
    assert_eq!(server.app.reload_from(&[&file]), Ok(Some(2)));
    let status = catalog.upsert_repair_centers(write()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "the revoked key is refused at once");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_from_a_mounted_secret_rotate_live_beside_the_config_map() {
    // As in the k8s manifests: the config from a ConfigMap, the tenants'
    // key hashes from a Secret, each mounted as a directory and updated by
    // a symlink swap.
    let config_map = tempfile::tempdir().unwrap();
    let secret = tempfile::tempdir().unwrap();
    let config = publish_config_map(config_map.path(), "1", &config_weighing("distance"));
    let tenant = |key: &str| {
        let hash = repairmatch::auth::key_hash(key);
        format!("[tenants.provider-fix]\nrole = \"provider\"\nkey_sha256 = [\"{hash}\"]\n")
    };
    let (old_key, new_key) = ("rmk_rotation_old", "rmk_rotation_new");
    let tenants = publish_mounted(secret.path(), "1", "tenants.toml", &tenant(old_key));
    let server = TestServer::start_with_config_files(&fixture(), &[config, tenants], true).await;
    let write = || pb::UpsertRepairCentersRequest { centers: vec![center_east("rotated", 1.0)] };
    let mut old = server.catalog_as(Some(old_key.to_owned())).await;
    let mut new = server.catalog_as(Some(new_key.to_owned())).await;
    old.upsert_repair_centers(write()).await.expect("the key from the Secret works");
    assert_eq!(new.upsert_repair_centers(write()).await.unwrap_err().code(), tonic::Code::Unauthenticated);

    publish_mounted(secret.path(), "2", "tenants.toml", &tenant(new_key));
    eventually("the new key works", async || new.upsert_repair_centers(write()).await.is_ok()).await;
    let refused = old.upsert_repair_centers(write()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "the key taken out of the Secret is revoked");
    // The ConfigMap's settings held through the Secret's update.
    assert_eq!(server.app.config().config.profiles["default"], {
        let only_distance: repairmatch::Config =
            repairmatch::Config::load(&[config_map.path().join("repairmatch.toml")]).unwrap();
        only_distance.profiles["default"].clone()
    });
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_read_at_start_only_do_not_count_as_a_reloaded_config() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("repairmatch.toml");
    std::fs::write(&file, config_weighing("distance")).unwrap();
    let server = TestServer::start_with_config_file(&fixture(), &file, false).await;
    let start_only = "\n[cache]\nttl_ms = 1234\n\n[log]\naccess = false\n\n[server]\nshutdown_pause_ms = 9\n";
    std::fs::write(&file, config_weighing("distance") + start_only).unwrap();
    assert_eq!(server.app.reload_from(&[&file]), Ok(None), "nothing that a reload applies changed");
    assert_eq!(server.app.config().version, 1);
    assert_ne!(server.app.config().config.cache.ttl_ms, 1234, "the cache keeps its start-up settings");
    std::fs::write(&file, config_weighing("rating") + start_only).unwrap();
    assert_eq!(server.app.reload_from(&[&file]), Ok(Some(2)), "the live part of the same file still reloads");
    server.stop().await;
}
