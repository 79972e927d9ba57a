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

fn pages_ahead(server: &TestServer) -> u64 {
    server.app.metrics().find_pages_ahead.get()
}

/// Waits (bounded) until `count` pages ranked along with fresh answers were
/// cached: they are encoded and cached in the background.
async fn eventually_pages_ahead(server: &TestServer, count: u64) {
    let started = std::time::Instant::now();
    while pages_ahead(server) < count {
        let cached = pages_ahead(server);
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "{cached} pages ahead cached, not {count}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(pages_ahead(server), count);
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
    // ...whose ranking also gave its second page, cached in the background.
    eventually_pages_ahead(&server, 1).await;
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
    // One page (of 100) holds them all: no next page is ranked ahead.
    let centers = (0..60).map(|i| center_east(&format!("c{i}"), 1.0 + f64::from(i) / 10.0)).collect();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_goes_on_through_the_ranking_it_started_with_while_the_catalog_changes() {
    let centers = vec![center_east("a", 2.0), center_east("b", 4.0), center_east("c", 6.0)];
    let server = TestServer::start(&Fixture::with_centers(centers)).await;
    let mut client = server.client().await;
    let mut request = find_request();
    request.page_size = 1;
    let first = client.find_repair_center(request.clone()).await.unwrap().into_inner();
    assert_eq!(match_ids(&first), ["a"]);
    // Pages 2 and 3 came from the same ranking, at the same version.
    eventually_pages_ahead(&server, 2).await;
    assert_eq!(computed(&server), 1);

    // A closer center arrives, and a would-be second one leaves.
    let mut ops = server.catalog("ops").await;
    ops.upsert_repair_centers(pb::UpsertRepairCentersRequest { centers: vec![center_east("new", 1.0)] }).await.unwrap();
    ops.delete_repair_center(pb::DeleteRepairCenterRequest { id: "b".into(), etag: String::new() }).await.unwrap();

    request.page_token = first.next_page_token.clone();
    let second = client.find_repair_center(request.clone()).await.unwrap().into_inner();
    assert_eq!((match_ids(&second), second.matches[0].rank), (vec!["b".to_owned()], 2), "the ranking page 1 came from");
    assert_eq!(second.catalog_version, first.catalog_version);
    request.page_token = second.next_page_token.clone();
    let third = client.find_repair_center(request.clone()).await.unwrap().into_inner();
    assert_eq!((match_ids(&third), third.matches[0].rank), (vec!["c".to_owned()], 3));
    assert!(third.next_page_token.is_empty());

    // A fresh first page ranks the catalog as it is now.
    request.page_token.clear();
    request.page_size = 10;
    let now = client.find_repair_center(request).await.unwrap().into_inner();
    assert_eq!(match_ids(&now), ["new", "a", "c"]);
    server.stop().await;
}

#[tokio::test]
async fn each_language_is_one_entry_however_its_tag_is_spelled() {
    let server = TestServer::start(&Fixture::with_centers(vec![center_east("a", 3.0)])).await;
    let mut client = server.client().await;
    let ask =
        |language_code: &str| pb::FindRepairCenterRequest { language_code: language_code.into(), ..find_request() };
    let english = client.find_repair_center(ask("")).await.unwrap().into_inner();
    for tag in ["en", "fr", "zh-TW"] {
        assert_eq!(client.find_repair_center(ask(tag)).await.unwrap().into_inner(), english, "{tag}");
    }
    assert_eq!((computed(&server), hits(&server, "local")), (1, 3));
    let chinese = client.find_repair_center(ask("zh-Hans")).await.unwrap().into_inner();
    assert_eq!(chinese.language_code, "zh-Hans", "not the English answer from the cache");
    for tag in ["zh", "zh-CN", "zh-Hans-SG"] {
        assert_eq!(client.find_repair_center(ask(tag)).await.unwrap().into_inner(), chinese, "{tag}");
    }
    assert_eq!((computed(&server), hits(&server, "local")), (2, 6));
    server.stop().await;
}
