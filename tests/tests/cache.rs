//! The Find result cache through a real server: a hit is the miss's answer,
//! a write or a reload is never answered from before it, and identical
//! concurrent misses compute once.

use repairmatch_proto::v1 as pb;
use repairmatch_tests::*;

fn computed(server: &TestServer) -> u64 {
    server.app.metrics().find_computed.get()
}

fn hits(server: &TestServer, tier: &str) -> u64 {
    server.app.metrics().cache_hits.with_label_values(&[tier]).get()
}

#[tokio::test]
async fn a_hit_is_the_answer_a_miss_computed() {
    let server = TestServer::start(&Fixture::with_centers(vec![center_east("a", 3.0), center_east("b", 6.0)])).await;
    let mut client = server.client().await;
    let missed = client.find_repair_center(find_request()).await.unwrap().into_inner();
    let hit = client.find_repair_center(find_request()).await.unwrap().into_inner();
    assert_eq!(hit, missed, "every field, scores and tokens included");
    assert_eq!((computed(&server), hits(&server, "local")), (1, 1));
    let mut other = find_request();
    other.page_size = 1;
    let paged = client.find_repair_center(other).await.unwrap().into_inner();
    assert_eq!(match_ids(&paged), ["a"], "another request is another entry");
    assert_eq!(computed(&server), 2);
    server.stop().await;
}

#[tokio::test]
async fn a_write_is_never_answered_from_before_it() {
    let server = TestServer::start(&Fixture::with_centers(vec![center_east("a", 3.0)])).await;
    let mut client = server.client().await;
    assert_eq!(match_ids(&client.find_repair_center(find_request()).await.unwrap().into_inner()), ["a"]);
    let mut ops = server.catalog("ops").await;
    ops.upsert_repair_centers(pb::UpsertRepairCentersRequest { centers: vec![center_east("closer", 1.0)] })
        .await
        .unwrap();
    let after = client.find_repair_center(find_request()).await.unwrap().into_inner();
    assert_eq!(match_ids(&after), ["closer", "a"]);
    ops.delete_repair_center(pb::DeleteRepairCenterRequest { id: "closer".into(), etag: String::new() }).await.unwrap();
    let deleted = client.find_repair_center(find_request()).await.unwrap().into_inner();
    assert_eq!(match_ids(&deleted), ["a"]);
    assert_eq!(computed(&server), 3, "each catalog version computed once");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_identical_concurrent_misses_compute_once() {
    let centers = (0..200).map(|i| center_east(&format!("c{i}"), 1.0 + f64::from(i) / 10.0)).collect();
    let server = TestServer::start(&Fixture::with_centers(centers)).await;
    let client = server.client().await;
    let calls: Vec<_> = (0..500)
        .map(|_| {
            let mut client = client.clone();
            tokio::spawn(async move { client.find_repair_center(find_request()).await.unwrap().into_inner() })
        })
        .collect();
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.unwrap());
    }
    assert!(answers.windows(2).all(|pair| pair[0] == pair[1]), "one answer for all");
    assert_eq!(computed(&server), 1, "one computation for 500 identical misses");
    assert_eq!(hits(&server, "local"), 499);
    server.stop().await;
}

#[tokio::test]
async fn with_the_cache_off_every_find_computes() {
    let server = TestServer::start_adjusted(&Fixture::with_centers(vec![center_east("a", 3.0)]), |config| {
        config.cache.enabled = false;
    })
    .await;
    let mut client = server.client().await;
    for _ in 0..3 {
        client.find_repair_center(find_request()).await.unwrap();
    }
    assert_eq!((computed(&server), hits(&server, "local")), (3, 0));
    server.stop().await;
}
