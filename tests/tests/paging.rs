//! Pagination over gRPC: pages concatenate to one big page, tokens are bound
//! to their query, sizes are clamped as AIP-158 says.

use std::collections::HashSet;

use repairmatch_proto::v1 as pb;
use repairmatch_tests::*;
use tonic::Code;

fn many_centers() -> Fixture {
    // 130 centers at 19 distinct distances: plenty of exact score ties.
    Fixture::with_centers((0..130).map(|i| center_east(&format!("c{i:03}"), 0.4 + f64::from(i % 19))).collect())
}

#[tokio::test]
async fn pages_concatenated_equal_one_big_page_without_duplicates() {
    let server = TestServer::start(&many_centers()).await;
    let mut client = server.client().await;
    let mut request = find_request();
    request.page_size = 100;
    let first_hundred = client.find_repair_center(request.clone()).await.unwrap().into_inner();
    assert_eq!(first_hundred.total_size, 130);
    assert!(!first_hundred.next_page_token.is_empty());

    let mut everything = match_ids(&first_hundred);
    request.page_token = first_hundred.next_page_token.clone();
    let rest = client.find_repair_center(request.clone()).await.unwrap().into_inner();
    assert!(rest.next_page_token.is_empty(), "an empty token is the only end signal");
    everything.extend(match_ids(&rest));
    assert_eq!(everything.len(), 130);

    for page_size in [1, 7, 10, 33] {
        let mut paged = Vec::new();
        let mut ranks = Vec::new();
        request.page_size = page_size;
        request.page_token.clear();
        loop {
            let page = client.find_repair_center(request.clone()).await.unwrap().into_inner();
            assert!(page.matches.len() <= page_size as usize);
            paged.extend(match_ids(&page));
            ranks.extend(page.matches.iter().map(|m| m.rank));
            if page.next_page_token.is_empty() {
                break;
            }
            request.page_token = page.next_page_token;
        }
        assert_eq!(paged, everything, "page size {page_size}");
        assert_eq!(paged.iter().collect::<HashSet<_>>().len(), 130);
        assert_eq!(ranks, (1..=130).collect::<Vec<u32>>());
    }
    server.stop().await;
}

#[tokio::test]
async fn page_size_defaults_to_ten_and_is_capped_at_one_hundred() {
    let server = TestServer::start(&many_centers()).await;
    let mut client = server.client().await;
    let mut request = find_request();
    request.page_size = 0;
    assert_eq!(client.find_repair_center(request.clone()).await.unwrap().into_inner().matches.len(), 10);
    request.page_size = 5_000;
    assert_eq!(client.find_repair_center(request).await.unwrap().into_inner().matches.len(), 100);
    server.stop().await;
}

#[tokio::test]
async fn a_token_replayed_with_another_query_is_refused() {
    let server = TestServer::start(&many_centers()).await;
    let mut client = server.client().await;
    let mut request = find_request();
    request.page_size = 10;
    let token = client.find_repair_center(request.clone()).await.unwrap().into_inner().next_page_token;

    let mut other = request.clone();
    other.page_token = token.clone();
    other.location = Some(pb::LatLng { latitude: 31.3, longitude: 121.5 });
    let status = client.find_repair_center(other).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_request_fields(&status).0, ["page_token"]);

    let mut garbage = request.clone();
    garbage.page_token = "definitely-not-a-token".into();
    let status = client.find_repair_center(garbage).await.unwrap_err();
    assert_eq!(bad_request_fields(&status).0, ["page_token"]);

    request.page_token = token;
    assert!(client.find_repair_center(request).await.is_ok(), "the same query accepts it");
    server.stop().await;
}
